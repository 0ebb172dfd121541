/**
 * The `window` kind: a small SVG chart of one aggregate over the windows — bars when
 * there is one row per window, one line per key when `by` columns split the windows —
 * with the table beneath and a selector for the aggregate.
 */

import { h, s } from './dom';
import { formatNumber, isNumericType, parseTime } from './format';
import { colorsFor } from './palette';
import { formatTick, tickStep, timeScale, valueScale } from './scale';
import { renderTable } from './table';
import { JSONObject, Table } from './types';

const WIDTH = 640;
const HEIGHT = 200;
const MARGIN = { left: 64, right: 28, top: 10, bottom: 24 };  // right: room for the last tick label
const TIME_COLUMNS = new Set(['window_start', 'window_end']);

export interface WindowLayout {
  start: number;
  end: number;
  /** Columns that name a series (the `by` keys): non-numeric, not a window bound. */
  keys: number[];
  /** Numeric aggregate columns, the first one charted by default. */
  values: number[];
}

export function windowLayout(table: Table): WindowLayout {
  const cols = table.columns;
  return {
    start: cols.findIndex(c => c.name === 'window_start'),
    end: cols.findIndex(c => c.name === 'window_end'),
    keys: cols.flatMap((c, i) => (!TIME_COLUMNS.has(c.name) && !isNumericType(c.type) ? [i] : [])),
    values: cols.flatMap((c, i) => (!TIME_COLUMNS.has(c.name) && isNumericType(c.type) ? [i] : []))
  };
}

/** The series name of a row: its key cells joined (empty without keys). */
export function seriesKey(row: Table['rows'][number], keys: number[]): string {
  return keys.map(i => (row[i] === null ? '∅' : String(row[i]))).join(' · ');
}

function chart(table: Table, layout: WindowLayout, column: number): SVGSVGElement {
  const points = table.rows
    .map(row => ({ t: parseTime(row[layout.start]), e: parseTime(row[layout.end]), v: row[column], row }))
    .filter(p => !Number.isNaN(p.t));
  const values = points.map(p => (typeof p.v === 'number' ? p.v : 0));
  const tEnd = points.map(p => (Number.isNaN(p.e) ? p.t : p.e));
  const lines = layout.keys.length > 0;
  const tMin = Math.min(...points.map(p => p.t));
  // Bars span their window, so the axis runs to the last window's end.
  const tMax = lines ? Math.max(...points.map(p => p.t)) : Math.max(...tEnd);
  const x = timeScale([tMin, tMax], [MARGIN.left, WIDTH - MARGIN.right], 5);
  const y = valueScale([Math.min(...values), Math.max(...values)], [HEIGHT - MARGIN.bottom, MARGIN.top]);
  const svg = s('svg', { viewBox: `0 0 ${WIDTH} ${HEIGHT}`, width: '100%', role: 'img', preserveAspectRatio: 'xMinYMin meet',
    'aria-label': `${table.columns[column].name} per window` });
  const axes = s('g', { class: 'asl-axis' });
  for (const v of y.ticks()) {
    axes.appendChild(s('line', { class: 'asl-grid', x1: MARGIN.left, x2: WIDTH - MARGIN.right, y1: y(v), y2: y(v) }));
    axes.appendChild(s('text', { x: MARGIN.left - 6, y: y(v), 'text-anchor': 'end', 'dominant-baseline': 'central' }, formatNumber(v)));
  }
  const ticks = x.ticks();
  const step = tickStep(ticks);
  for (const t of ticks) {
    axes.appendChild(s('text', { x: x(t), y: HEIGHT - 6, 'text-anchor': 'middle' }, formatTick(t, step)));
  }
  svg.appendChild(axes);
  if (!lines) {
    const bars = s('g', { class: 'asl-bars' });
    points.forEach((p, i) => {
      const x0 = x(p.t);
      const w = Math.max(1, x(tEnd[i]) - x0 - 1);
      const y0 = y(Math.max(0, values[i]));
      bars.appendChild(s('rect', { class: 'asl-bar', x: x0.toFixed(1), y: y0.toFixed(1), width: w.toFixed(1),
        height: Math.max(0, Math.abs(y(values[i]) - y(0))).toFixed(1) },
        s('title', {}, `${p.row[layout.start]}: ${formatNumber(values[i])}`)));
    });
    svg.appendChild(bars);
    return svg;
  }
  const series = new Map<string, { t: number; v: number }[]>();
  points.forEach((p, i) => {
    const key = seriesKey(p.row, layout.keys);
    series.set(key, [...(series.get(key) ?? []), { t: p.t, v: values[i] }]);
  });
  const colors = colorsFor(series.keys());
  const group = s('g', { class: 'asl-lines' });
  for (const [key, pts] of series) {
    pts.sort((a, b) => a.t - b.t);
    const d = pts.map((p, i) => `${i ? 'L' : 'M'}${x(p.t).toFixed(1)},${y(p.v).toFixed(1)}`).join('');
    const line = s('path', { class: 'asl-line', d, stroke: colors.get(key), fill: 'none', 'data-key': key }, s('title', {}, key));
    group.appendChild(line);
    for (const p of pts) {
      group.appendChild(s('circle', { class: 'asl-point', cx: x(p.t).toFixed(1), cy: y(p.v).toFixed(1), r: 2.5, fill: colors.get(key) },
        s('title', {}, `${key}: ${formatNumber(p.v)}`)));
    }
  }
  svg.appendChild(group);
  return svg;
}

function keyLegend(table: Table, layout: WindowLayout): HTMLElement | null {
  if (!layout.keys.length) {
    return null;
  }
  const colors = colorsFor(table.rows.map(r => seriesKey(r, layout.keys)));
  return h('div', { class: 'asl-legend' }, ...[...colors].map(([key, color]) =>
    h('span', { class: 'asl-legend-item', 'data-key': key },
      h('span', { class: 'asl-swatch', style: `background-color: ${color}`, 'data-color': color }), key)));
}

function specLine(spec: unknown): HTMLElement {
  const parts = spec && typeof spec === 'object' && !Array.isArray(spec)
    ? Object.entries(spec as JSONObject).map(([k, v]) => h('code', { class: 'asl-chip' }, `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`))
    : [];
  return h('div', { class: 'asl-header' }, h('strong', {}, 'window '), ...parts);
}

export function renderWindow(doc: JSONObject, table: Table): HTMLElement {
  const layout = windowLayout(table);
  const body = h('div', { class: 'asl-window' }, specLine(doc['spec']));
  const chartable = layout.start >= 0 && layout.values.length > 0 && table.rows.length > 0;
  if (chartable) {
    const holder = h('div', { class: 'asl-window-chart', 'data-mode': layout.keys.length ? 'lines' : 'bars' });
    const draw = (column: number) => {
      holder.textContent = '';
      holder.appendChild(chart(table, layout, column));
      holder.setAttribute('data-column', table.columns[column].name);
    };
    if (layout.values.length > 1) {
      const select = h('select', { class: 'asl-window-select', 'aria-label': 'aggregate to chart' },
        ...layout.values.map(i => h('option', { value: i }, table.columns[i].name)));
      select.addEventListener('change', () => draw(Number(select.value)));
      body.appendChild(h('label', { class: 'asl-toolbar' }, 'chart ', select));
    }
    draw(layout.values[0]);
    body.appendChild(holder);
    if (table.truncated) {
      // The document holds only the rows the table shows: never let the small chart pass
      // for all of them.
      holder.setAttribute('data-truncated', 'true');
      body.appendChild(h('div', { class: 'asl-window-note' },
        `charted: the first ${formatNumber(table.rows.length)} of ${formatNumber(table.total)} windows; ` +
        '--chart (or window_chart(frame)) draws them all'));
    }
    const legend = keyLegend(table, layout);
    if (legend) {
      body.appendChild(legend);
    }
  }
  body.appendChild(renderTable(table));
  return body;
}
