/*
 * Every example notebook as a person meets it: opened in JupyterLab in Chromium, its
 * outputs cleared and the whole notebook run (Edit > Clear Outputs, Run > Run All
 * Cells), then checked for what nbval cannot see: no error output, every AllSource
 * result drawn by the extension (not its HTML fallback), every chart drawn by
 * vega-embed, every widget drawn and answering a click and a drag, and the extension's
 * text readable in the dark theme. What each cell should show is read from the
 * notebook's committed outputs (the ones nbval compares), so a notebook that changes
 * needs no change here. A full-page screenshot of each notebook is kept beside the
 * results (test-results/, attached to the report).
 */
import { expect, Locator, Page, test } from '@playwright/test';
import * as fs from 'fs';
import * as path from 'path';

const LAB = process.env.ASL_LAB_URL;
const NOTEBOOKS = path.resolve(__dirname, '..', '..', 'notebooks');
const DOCUMENT = 'application/vnd.allsource.v1+json';
// Any version, and Altair's "v6.json" spelling too: a chart JupyterLab cannot draw must
// fail here, not go unnoticed.
const VEGA_LITE = /^application\/vnd\.vegalite\.v\d+[.+]json$/;
const WIDGET = 'application/vnd.jupyter.widget-view+json';
// An ipywidgets output: the output element is the widget's own (class jupyter-widgets)
// or holds it, depending on the JupyterLab version.
const WIDGET_OUTPUT =
  '.jp-OutputArea-output.jupyter-widgets, .jp-OutputArea-output:has(> .jupyter-widgets)';
const NAMES = fs
  .readdirSync(NOTEBOOKS)
  .filter(n => /^\d\d-.*\.ipynb$/.test(n))
  .sort();

/** What one cell's committed outputs say it shows. */
interface Shown {
  cell: number; // index among all cells, as .jp-Cell elements are numbered
  kinds: string[]; // data-kind of each AllSource document, in order
  charts: Array<{ rows: number | null }>; // rows of inline data when the spec has them
  widgets: string[]; // the widget class each widget output names (Explorer, TimeTravel...)
}

interface Output {
  output_type: string;
  data?: Record<string, unknown>;
}

function joined(text: unknown): string {
  return Array.isArray(text) ? text.join('') : typeof text === 'string' ? text : '';
}

/**
 * How many marks the chart draws, when its spec says so plainly: a single view of bars,
 * points or ticks over one inline table, with no transform (one mark per row). Null for
 * anything else (layers, facets, aggregates), whose marks are not counted.
 */
function inlineRows(spec: unknown): number | null {
  if (typeof spec !== 'object' || spec === null) {
    return null;
  }
  const s = spec as Record<string, unknown>;
  const mark = s['mark'];
  const type = typeof mark === 'object' && mark !== null ? (mark as Record<string, unknown>)['type'] : mark;
  if (!['bar', 'point', 'circle', 'square', 'tick'].includes(String(type)) || s['transform']) {
    return null;
  }
  const encoding = JSON.stringify(s['encoding'] ?? {});
  if (/"aggregate"|"bin"/.test(encoding)) {
    return null;
  }
  const data = s['data'] as Record<string, unknown> | undefined;
  if (data && Array.isArray(data['values'])) {
    return data['values'].length;
  }
  const datasets = s['datasets'] as Record<string, unknown> | undefined;
  if (datasets && data && typeof data['name'] === 'string' && Array.isArray(datasets[data['name']])) {
    return (datasets[data['name']] as unknown[]).length;
  }
  return null;
}

function expectedOf(name: string): { shown: Shown[]; codeCells: number } {
  const nb = JSON.parse(fs.readFileSync(path.join(NOTEBOOKS, name), 'utf-8')) as {
    cells: Array<{ cell_type: string; outputs?: Output[] }>;
  };
  const shown: Shown[] = [];
  nb.cells.forEach((cell, index) => {
    const entry: Shown = { cell: index, kinds: [], charts: [], widgets: [] };
    for (const output of cell.outputs ?? []) {
      const data = output.data ?? {};
      const doc = data[DOCUMENT] as Record<string, unknown> | undefined;
      if (doc && typeof doc['kind'] === 'string') {
        entry.kinds.push(doc['kind']);
      }
      for (const [mime, spec] of Object.entries(data)) {
        if (VEGA_LITE.test(mime)) {
          entry.charts.push({ rows: inlineRows(spec) });
        }
      }
      if (data[WIDGET]) {
        entry.widgets.push(joined(data['text/plain']).split('(')[0]);
      }
    }
    if (entry.kinds.length || entry.charts.length || entry.widgets.length) {
      shown.push(entry);
    }
  });
  return { shown, codeCells: nb.cells.filter(c => c.cell_type === 'code').length };
}

async function sessionOf(page: Page, name: string): Promise<{ id: string; state: string } | null> {
  const response = await page.request.get(`${LAB}/api/sessions`);
  const sessions = (await response.json()) as Array<{
    id: string;
    path: string;
    kernel: { execution_state: string } | null;
  }>;
  const session = sessions.find(s => s.path.endsWith(name));
  return session ? { id: session.id, state: session.kernel?.execution_state ?? 'no kernel' } : null;
}

async function kernelIdle(page: Page, name: string): Promise<void> {
  await expect
    .poll(async () => (await sessionOf(page, name))?.state ?? 'no session', {
      timeout: 90_000,
      intervals: [500]
    })
    .toBe('idle');
}

/** Opens `name` in a workspace of its own, so no tab of an earlier test comes back. */
async function open(page: Page, name: string): Promise<void> {
  const workspace = name.replace(/[^A-Za-z0-9]/g, '-');
  await page.goto(`${LAB}/lab/workspaces/${workspace}/tree/${name}`);
  await expect(page.locator('.jp-Notebook .jp-Cell').first()).toBeVisible({ timeout: 90_000 });
  await kernelIdle(page, name);
}

/** Clicks a top menu's item (a path through submenus: ['Theme', 'JupyterLab Dark']). */
async function menu(page: Page, top: string, ...items: string[]): Promise<void> {
  await page.locator('.lm-MenuBar-itemLabel', { hasText: new RegExp(`^${top}$`) }).click();
  for (const [i, item] of items.entries()) {
    const entry = page
      .locator('.lm-Menu:visible .lm-Menu-itemLabel', { hasText: new RegExp(`^${item}$`) })
      .first();
    if (i < items.length - 1) {
      await entry.hover();
    } else {
      await entry.click();
    }
  }
}

/** The prompts of every code cell: "[3]:", "[*]:" while queued or running, "[ ]:". */
async function prompts(page: Page): Promise<string[]> {
  return page
    .locator('.jp-Notebook .jp-CodeCell .jp-InputPrompt')
    .evaluateAll(nodes => nodes.map(n => (n.textContent ?? '').trim()));
}

const ERRORS = '.jp-OutputArea-output[data-mime-type="application/vnd.jupyter.stderr"]';

async function runAll(page: Page, name: string, codeCells: number): Promise<void> {
  await menu(page, 'Edit', 'Clear Outputs of All Cells');
  await expect(page.locator('.jp-Notebook .jp-OutputArea-output')).toHaveCount(0);
  await menu(page, 'Run', 'Run All Cells');
  // Finished: nothing queued, and either every cell ran or one failed (the rest are
  // then left unrun).
  await expect
    .poll(
      async () => {
        const shown = await prompts(page);
        if (shown.some(p => p.includes('*'))) {
          return 'running';
        }
        const ran = shown.filter(p => /\[\d+\]/.test(p)).length;
        if (ran === codeCells) {
          return 'done';
        }
        return (await page.locator(ERRORS).count()) > 0 ? 'failed' : `${ran} of ${codeCells} ran`;
      },
      { timeout: 150_000, intervals: [500] }
    )
    .toMatch(/^(done|failed)$/);
  await kernelIdle(page, name);
}

/** Contrast ratio (WCAG 2) of an element's text against what is drawn behind it. */
async function contrastOf(element: Locator): Promise<number> {
  return element.evaluate(node => {
    type RGBA = [number, number, number, number];
    const parse = (css: string): RGBA => {
      const m = css.match(/rgba?\(([^)]+)\)/);
      if (!m) {
        return [0, 0, 0, 0];
      }
      const p = m[1].split(/[\s,/]+/).filter(Boolean).map(Number);
      return [p[0], p[1], p[2], p.length > 3 ? p[3] : 1];
    };
    const over = (top: RGBA, below: RGBA): RGBA => {
      const a = top[3] + below[3] * (1 - top[3]);
      if (a === 0) {
        return [0, 0, 0, 0];
      }
      const mix = (i: number) => (top[i] * top[3] + below[i] * below[3] * (1 - top[3])) / a;
      return [mix(0), mix(1), mix(2), a];
    };
    // The backgrounds from the element up, laid over each other until one is opaque.
    let background: RGBA = [0, 0, 0, 0];
    const layers: RGBA[] = [];
    for (let el: Element | null = node; el; el = el.parentElement) {
      const layer = parse(getComputedStyle(el).backgroundColor);
      if (layer[3] > 0) {
        layers.push(layer);
        if (layer[3] >= 1) {
          break;
        }
      }
    }
    for (const layer of layers.reverse()) {
      background = over(layer, background);
    }
    if (background[3] < 1) {
      background = over(background, [255, 255, 255, 1]);
    }
    const text = over(parse(getComputedStyle(node).color), background);
    const luminance = (c: RGBA) => {
      const [r, g, b] = [c[0], c[1], c[2]].map(v => {
        const s = v / 255;
        return s <= 0.03928 ? s / 12.92 : Math.pow((s + 0.055) / 1.055, 2.4);
      });
      return 0.2126 * r + 0.7152 * g + 0.0722 * b;
    };
    const [hi, lo] = [luminance(text), luminance(background)].sort((a, b) => b - a);
    return (hi + 0.05) / (lo + 0.05);
  });
}

/** The whole notebook in one picture: the window made as tall as its content. */
async function screenshotWhole(page: Page, name: string): Promise<void> {
  const viewport = page.viewportSize() ?? { width: 1400, height: 1000 };
  const scroller = page.locator('.jp-NotebookPanel:visible .jp-WindowedPanel-outer').first();
  const height = await scroller.evaluate(el => el.scrollHeight);
  // Chromium cannot capture taller than 16,384 px; a longer notebook is cut there.
  await page.setViewportSize({ width: viewport.width, height: Math.min(height + 200, 16_000) });
  // From the top: Run All leaves the notebook scrolled to its last cell.
  await scroller.evaluate(el => el.scrollTo(0, 0));
  await expect.poll(() => scroller.evaluate(el => el.scrollTop)).toBe(0);
  const file = test.info().outputPath(`${name.replace('.ipynb', '')}.png`);
  await page.screenshot({ path: file, fullPage: true });
  await test.info().attach(name, { path: file, contentType: 'image/png' });
  await page.setViewportSize(viewport);
}

/**
 * Closes the page, then the notebook's kernel (07 holds ~660K events): in that order, or
 * the open notebook would start another kernel for the session it lost.
 */
async function shutDown(page: Page, name: string): Promise<void> {
  const api = page.context().request;
  await page.close();
  const response = await api.get(`${LAB}/api/sessions`);
  const sessions = (await response.json()) as Array<{ id: string; path: string }>;
  for (const session of sessions.filter(s => s.path.endsWith(name))) {
    await api.delete(`${LAB}/api/sessions/${session.id}`);
  }
}

/** A widget's visible text, to see that an action changed what it shows. */
async function textOf(widget: Locator): Promise<string> {
  return (await widget.innerText()).trim();
}

async function timeTravelAnswers(widget: Locator, page: Page): Promise<void> {
  const first = await textOf(widget);
  // Click: one moment back.
  await widget.getByRole('button', { name: '◀' }).click();
  await expect.poll(() => textOf(widget)).not.toBe(first);
  const afterClick = await textOf(widget);
  // Drag: the slider's handle to the start of its track, the first moment.
  const handle = widget.locator('.noUi-handle').first();
  const track = widget.locator('.noUi-target').first();
  const from = await handle.boundingBox();
  const to = await track.boundingBox();
  expect(from && to, 'the time-travel slider is not drawn').toBeTruthy();
  if (from && to) {
    await page.mouse.move(from.x + from.width / 2, from.y + from.height / 2);
    await page.mouse.down();
    await page.mouse.move(to.x + 2, from.y + from.height / 2, { steps: 12 });
    await page.mouse.up();
  }
  await expect.poll(() => textOf(widget)).not.toBe(afterClick);
}

async function explorerAnswers(widget: Locator, page: Page): Promise<void> {
  const list = widget.locator('select').first();
  const options = list.locator('option');
  await expect(options.first()).toBeVisible();
  const count = await options.count();
  expect(count, 'the explorer lists fewer than 2 events').toBeGreaterThanOrEqual(2);
  const detail = async () => textOf(widget);
  const before = await detail();
  // Click: the first event opens, with its sequence in the detail.
  await options.nth(0).click();
  await expect.poll(detail).not.toBe(before);
  const afterClick = await detail();
  // Drag: press on the first event and let go on another; the detail follows.
  const last = Math.min(count, 3) - 1;
  const a = await options.nth(0).boundingBox();
  const b = await options.nth(last).boundingBox();
  expect(a && b, 'the explorer list is not drawn').toBeTruthy();
  if (a && b) {
    await page.mouse.move(a.x + 20, a.y + a.height / 2);
    await page.mouse.down();
    await page.mouse.move(b.x + 20, b.y + b.height / 2, { steps: 8 });
    await page.mouse.up();
  }
  await expect.poll(detail).not.toBe(afterClick);
}

test.describe('example notebooks', () => {
  for (const name of NAMES) {
    test(`${name} runs in JupyterLab and draws every result`, async ({ page }) => {
      expect(LAB, 'global-setup.ts did not start JupyterLab').toBeTruthy();
      const { shown, codeCells } = expectedOf(name);
      await open(page, name);
      try {
        await runAll(page, name, codeCells);

        const errors = await page.locator(ERRORS).allInnerTexts();
        expect(errors, `error output in ${name}`).toEqual([]);
        await expect(page.locator('.jp-Notebook .asl-fallback')).toHaveCount(0);

        const cells = page.locator('.jp-Notebook .jp-Cell');
        for (const entry of shown) {
          const cell = cells.nth(entry.cell);
          const where = `${name}, cell ${entry.cell + 1}`;
          // Drawn by the extension: one .asl-root per document, of the same kind.
          const roots = cell.locator('.asl-root');
          await expect(roots, `${where}: AllSource results`).toHaveCount(entry.kinds.length);
          expect(
            await roots.evaluateAll(nodes => nodes.map(n => n.getAttribute('data-kind'))),
            `${where}: kinds drawn`
          ).toEqual(entry.kinds);
          // Charts: vega-embed drew a canvas or an svg with something on it.
          const charts = cell.locator('.vega-embed');
          // What drew each output, for the message when the count is wrong.
          const drawnBy = entry.charts.length
            ? await cell
                .locator('.jp-OutputArea-output')
                .evaluateAll(nodes =>
                  nodes.map(n => `${n.getAttribute('data-mime-type')} (${n.className})`).join('; ')
                )
            : '';
          await expect(charts, `${where}: charts; outputs drawn as ${drawnBy}`).toHaveCount(
            entry.charts.length
          );
          for (const [i, chart] of entry.charts.entries()) {
            const drawn = charts.nth(i).locator('canvas, svg.marks').first();
            await expect(drawn, `${where}: chart ${i + 1} drawn`).toBeVisible();
            const box = await drawn.boundingBox();
            expect((box?.width ?? 0) * (box?.height ?? 0), `${where}: chart size`).toBeGreaterThan(
              1000
            );
            const marks = await charts
              .nth(i)
              .evaluate(node => {
                const svg = node.querySelector('svg.marks');
                if (svg) {
                  // Data marks only: axes, grids and legends have roles of their own.
                  return svg.querySelectorAll(
                    'g.role-mark.mark-rect > path, g.role-mark.mark-symbol > path'
                  ).length;
                }
                const canvas = node.querySelector('canvas');
                if (!canvas) {
                  return 0;
                }
                // On a canvas the marks are pixels: count the colours drawn (a blank or
                // axis-only canvas has one or two).
                const ctx = canvas.getContext('2d');
                if (!ctx) {
                  return 0;
                }
                const pixels = ctx.getImageData(0, 0, canvas.width, canvas.height).data;
                const colours = new Set<number>();
                for (let p = 0; p < pixels.length && colours.size < 64; p += 16) {
                  colours.add((pixels[p] << 16) | (pixels[p + 1] << 8) | pixels[p + 2]);
                }
                return -colours.size; // negative: colours, not marks
              });
            if (marks >= 0 && chart.rows !== null) {
              // An svg: one mark per row of the chart's inline data.
              expect(marks, `${where}: chart ${i + 1} marks`).toBe(chart.rows);
            } else {
              expect(Math.abs(marks), `${where}: chart ${i + 1} has marks`).toBeGreaterThan(2);
            }
          }
          // Widgets: drawn by ipywidgets, not "Error displaying widget".
          const widgets = cell.locator(WIDGET_OUTPUT);
          await expect(widgets, `${where}: widgets`).toHaveCount(entry.widgets.length);
          for (const [i, kind] of entry.widgets.entries()) {
            await expect(widgets.nth(i), `${where}: ${kind} drawn`).not.toContainText(
              'Error displaying widget'
            );
            await expect(widgets.nth(i)).toBeVisible();
          }
        }

        await screenshotWhole(page, name);

        for (const entry of shown) {
          const cell = cells.nth(entry.cell);
          for (const kind of entry.widgets) {
            const widget = cell
              .locator(WIDGET_OUTPUT)
              .filter({ has: page.locator('.allsource-panel') });
            if (kind === 'TimeTravel') {
              await timeTravelAnswers(widget.first(), page);
            } else if (kind === 'Explorer') {
              await explorerAnswers(widget.first(), page);
            }
          }
        }
      } catch (error) {
        // Playwright's own failure screenshot would come after the page is closed.
        await page.screenshot({ path: test.info().outputPath('failed.png'), fullPage: true });
        throw error;
      } finally {
        await shutDown(page, name);
      }
    });
  }

  test('the extension is readable in the dark theme', async ({ page }) => {
    // The committed outputs are drawn on opening: no kernel needs to run.
    const name = '02-time-travel.ipynb';
    await open(page, name);
    try {
      const root = page.locator('.jp-Notebook .asl-root').first();
      await expect(root).toBeVisible();
      await menu(page, 'Settings', 'Theme', 'JupyterLab Dark');
      await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'false', {
        timeout: 30_000
      });
      // Every element of the extension's outputs that holds text of its own.
      const texts = page.locator('.jp-Notebook .asl-root *').filter({ hasText: /\S/ });
      const measured: Array<{ text: string; ratio: number }> = [];
      const n = await texts.count();
      for (let i = 0; i < n; i++) {
        const element = texts.nth(i);
        const own = await element.evaluate(el =>
          Array.from(el.childNodes)
            .filter(c => c.nodeType === Node.TEXT_NODE)
            .map(c => c.textContent ?? '')
            .join('')
            .trim()
        );
        if (own && (await element.isVisible())) {
          measured.push({ text: own.slice(0, 40), ratio: await contrastOf(element) });
        }
      }
      expect(measured.length, 'no text measured in the extension outputs').toBeGreaterThan(5);
      const file = test.info().outputPath('dark-theme.png');
      await page.screenshot({ path: file });
      await test.info().attach('dark theme', { path: file, contentType: 'image/png' });
      await test.info().attach('dark theme contrast', {
        body: JSON.stringify(measured, null, 1),
        contentType: 'application/json'
      });
      // WCAG AA: 4.5 for text, 3 for large text; the extension's smallest muted text
      // must still pass the large-text bar, and its body text the normal one.
      const worst = measured.reduce((a, b) => (a.ratio <= b.ratio ? a : b));
      console.log(
        `dark theme: ${measured.length} texts measured, lowest contrast ` +
          `${worst.ratio.toFixed(2)} (${JSON.stringify(worst.text)})`
      );
      expect(worst.ratio, `lowest contrast: ${JSON.stringify(worst)}`).toBeGreaterThanOrEqual(3);
      const body = await contrastOf(page.locator('.jp-Notebook .asl-root').first());
      expect(body, 'the extension body text contrast').toBeGreaterThanOrEqual(4.5);
    } catch (error) {
      await page.screenshot({ path: test.info().outputPath('failed.png') });
      throw error;
    } finally {
      // Back to light: the theme is a setting, and later tests share it.
      await menu(page, 'Settings', 'Theme', 'JupyterLab Light');
      await expect(page.locator('body')).toHaveAttribute('data-jp-theme-light', 'true', {
        timeout: 30_000
      });
      await shutDown(page, name);
    }
  });
});
