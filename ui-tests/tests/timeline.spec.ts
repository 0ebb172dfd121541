/*
 * A real JupyterLab with the prebuilt extension: run a cell that displays events and
 * check that the extension (not the HTML fallback) draws the timeline, that clicking an
 * event pins its payload and its entity's state, and that the table view opens. Then,
 * on events minutes apart: each can be clicked, the axis names the date and the zone,
 * and the keyboard reaches and pins a mark.
 */
import { expect, Page, test } from '@playwright/test';

const LAB = process.env.ASL_LAB_URL;

async function kernelIdle(page: Page, notebook = 'timeline.ipynb'): Promise<void> {
  // The server's view of the notebook's kernel, not a status-bar text: it does not
  // depend on how this JupyterLab version draws its toolbar.
  await expect
    .poll(
      async () => {
        const response = await page.request.get(`${LAB}/api/sessions`);
        const sessions = (await response.json()) as Array<{
          path: string;
          kernel: { execution_state: string } | null;
        }>;
        const session = sessions.find(s => s.path.endsWith(notebook));
        return session?.kernel?.execution_state ?? 'no kernel';
      },
      { timeout: 90_000, intervals: [500] }
    )
    .toBe('idle');
}

test('a cell that displays events shows them as a timeline', async ({ page }) => {
  expect(LAB, 'global-setup.ts did not start JupyterLab').toBeTruthy();
  await page.goto(`${LAB}/lab/tree/timeline.ipynb`);
  const cell = page.locator('.jp-Notebook .jp-CodeCell').first();
  await expect(cell).toBeVisible({ timeout: 90_000 });
  await kernelIdle(page);

  // Run the cell: into its editor, then Shift+Enter.
  await cell.locator('.jp-InputArea-editor').click();
  await page.keyboard.press('Shift+Enter');

  const root = page.locator('.asl-root[data-kind="events"]');
  await expect(root).toBeVisible({ timeout: 90_000 });
  await expect(root.locator('.asl-fallback')).toHaveCount(0);
  await expect(root.locator('.asl-timeline')).toBeVisible();
  const marks = root.locator('.asl-mark');
  await expect(marks).toHaveCount(20);

  // Sequence 8 is i = 7: order.paid on order-1, whose earlier events (i = 1, 4) set
  // qty = 5; the state after it holds that, the payload does not.
  await root.locator('.asl-mark[data-sequence="8"]').click();
  const pinned = root.locator('.asl-pinned');
  await expect(pinned).toBeVisible();
  await expect(pinned).toContainText('sku');
  await expect(pinned).toContainText('sku-07');
  const state = root.locator('.asl-state');
  await expect(state).toBeVisible();
  await expect(state).toContainText(/qty"?\s*:\s*5\b/);
  await expect(state).toContainText('sku-07');
  // What it looked like, kept beside the results (failures also get one automatically).
  await page.screenshot({ path: test.info().outputPath('timeline.png') });

  await root.locator('.asl-toggle-table').click();
  await expect(root.locator('.asl-table')).toBeVisible();
  await expect(root.locator('.asl-table')).toContainText('order.paid');
  await page.screenshot({ path: test.info().outputPath('table.png') });
});

// order-47 placed, corrected and paid within five minutes, inside a ten-hour day: drawn
// on one line, the three marks would cover each other and only the top one take a click.
const BURST_CELL = `import allsource_lab as asl

store = asl.open()
store.append("order.placed", "order-47", {"amount": 10}, timestamp="2026-01-01T09:00:00Z")
store.append("order.corrected", "order-47", {"amount": 12}, timestamp="2026-01-01T09:02:00Z")
store.append("order.paid", "order-47", {"paid": True}, timestamp="2026-01-01T09:05:00Z")
store.append("order.placed", "order-1", {"amount": 5}, timestamp="2026-01-01T04:00:00Z")
store.append("order.paid", "order-1", {"paid": True}, timestamp="2026-01-01T14:00:00Z")
store.events()`;

/** Write a one-cell notebook into JupyterLab's root through the contents API. */
async function writeNotebook(page: Page, name: string, source: string): Promise<void> {
  // The server wants its XSRF cookie echoed on writes; the page visit set it.
  const xsrf = (await page.context().cookies()).find(c => c.name === '_xsrf')?.value ?? '';
  const lines = source.split('\n').map((line, i, all) => (i < all.length - 1 ? line + '\n' : line));
  const response = await page.request.put(`${LAB}/api/contents/${name}`, {
    headers: { 'X-XSRFToken': xsrf },
    data: {
      type: 'notebook',
      format: 'json',
      content: {
        cells: [{ cell_type: 'code', execution_count: null, id: 'burst-cell', metadata: {}, outputs: [], source: lines }],
        metadata: {
          kernelspec: { display_name: 'Python 3 (ipykernel)', language: 'python', name: 'python3' },
          language_info: { name: 'python' }
        },
        nbformat: 4,
        nbformat_minor: 5
      }
    }
  });
  expect(response.ok(), `writing ${name}: ${response.status()} ${await response.text()}`).toBeTruthy();
}

test('events minutes apart can each be clicked, the axis names day and zone, keys pin', async ({ page }) => {
  expect(LAB, 'global-setup.ts did not start JupyterLab').toBeTruthy();
  await page.goto(`${LAB}/lab`);
  await writeNotebook(page, 'burst.ipynb', BURST_CELL);
  await page.goto(`${LAB}/lab/tree/burst.ipynb`);
  // Only this notebook's panel: the first test's notebook may be open in a hidden tab.
  const panel = page.locator('.jp-NotebookPanel:visible');
  const cell = panel.locator('.jp-Notebook .jp-CodeCell').first();
  await expect(cell).toBeVisible({ timeout: 90_000 });
  await kernelIdle(page, 'burst.ipynb');
  await cell.locator('.jp-InputArea-editor').click();
  await page.keyboard.press('Shift+Enter');

  const root = panel.locator('.asl-root[data-kind="events"]');
  await expect(root).toBeVisible({ timeout: 90_000 });
  await expect(root.locator('.asl-mark')).toHaveCount(5);

  // A real click on each: Playwright refuses (and the test times out) when another
  // element would take the click at the mark's center.
  const pinned = root.locator('.asl-pinned');
  const tooltip = root.locator('.asl-tooltip');
  for (const sequence of ['1', '2', '3']) {
    await root.locator(`.asl-mark[data-sequence="${sequence}"]`).click();
    await expect(pinned).toHaveAttribute('data-sequence', sequence);
    // The tooltip must not stay over the card just pinned.
    await expect(tooltip).toBeHidden();
  }
  await expect(pinned).toContainText('order.paid');
  await page.screenshot({ path: test.info().outputPath('burst.png') });

  const axis = root.locator('.asl-axis');
  await expect(axis).toContainText('2026-01-01');
  await expect(axis).toContainText('UTC');

  // From the last control before the chart, Tab reaches the first mark in time
  // (order-1 at 04:00, sequence 4), Enter pins it, and the arrow key moves on in time.
  await root.locator('.asl-pinned .asl-close').click();
  await expect(pinned).toHaveCount(0);
  await root.locator('.asl-toggle-table').focus();
  await page.keyboard.press('Tab');
  const first = root.locator('.asl-mark[data-sequence="4"]');
  await expect(first).toBeFocused();
  // The focus ring is drawn (the stroke widens), not only there for screen readers.
  expect(await first.evaluate(el => getComputedStyle(el).strokeWidth)).toBe('3px');
  await page.keyboard.press('Enter');
  await expect(pinned).toHaveAttribute('data-sequence', '4');
  await page.keyboard.press('ArrowRight');
  await expect(root.locator('.asl-mark[data-sequence="1"]')).toBeFocused();
  await page.keyboard.press('Enter');
  await expect(pinned).toHaveAttribute('data-sequence', '1');
  await page.screenshot({ path: test.info().outputPath('burst-keyboard.png') });

  // The table view leads with what happened: the payload is the first column, on screen.
  await root.locator('.asl-toggle-table').click();
  const firstHead = root.locator('.asl-table th').first();
  await expect(firstHead).toHaveText('payload');
  await expect(firstHead).toBeInViewport();
  await expect(root.locator('.asl-table th').last()).toHaveText('event_id');
  await page.screenshot({ path: test.info().outputPath('burst-table.png') });
});
