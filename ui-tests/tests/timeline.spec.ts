/*
 * A real JupyterLab with the prebuilt extension: run a cell that displays events and
 * check that the extension (not the HTML fallback) draws the timeline, that clicking an
 * event pins its payload and its entity's state, and that the table view opens.
 */
import { expect, Page, test } from '@playwright/test';

const LAB = process.env.ASL_LAB_URL;

async function kernelIdle(page: Page): Promise<void> {
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
        const session = sessions.find(s => s.path.endsWith('timeline.ipynb'));
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
