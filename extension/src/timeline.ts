/**
 * The `events` kind: a timeline drawn as one SVG, one lane per entity (or per event
 * type), with a legend, a hover tooltip, a click-to-pin detail panel and a table view.
 *
 * One SVG element per mark and a single delegated listener keep thousands of events
 * responsive; lanes past MAX_LANES are summarised, not drawn.
 */

import { Change, changeSummary, diffStates } from './diff';
import { h, s } from './dom';
import { formatNumber, formatTime } from './format';
import { EventRow, eventRows, previousStates, readingOrder, rowStates, RowState } from './events';
import { jsonTree } from './jsontree';
import { colorsFor } from './palette';
import { axisDates, formatTick, tickStep, timeScale } from './scale';
import { stackRows } from './stack';
import { footerText, renderTable } from './table';
import { isObject, JSONObject, JSONValue, Table } from './types';

// Lanes drawn before "+K more lanes": past ~30 the labels stop being readable.
export const MAX_LANES = 30;
const WIDTH = 800; // SVG user units; the SVG scales to the output's width
const LABEL_WIDTH = 150;
const RIGHT = 16;
const LANE_HEIGHT = 22;
const AXIS_HEIGHT = 38; // tick labels, then the dates beneath them
// Marks that are each a tab stop; past this, one is and the arrow keys move.
export const MAX_TAB_STOPS = 300;
const TOOLTIP_PAYLOAD_CHARS = 400;

type LaneMode = 'entity' | 'type';

interface Context {
  doc: JSONObject;
  table: Table;
  rows: EventRow[];
  states: RowState[];
  previous: (JSONObject | null)[];
  colors: Map<string, string>;
}

/** Lane names in order of first appearance, and the lane of each row. */
export function lanesOf(rows: EventRow[], mode: LaneMode): string[] {
  const seen = new Set<string>();
  for (const r of rows) {
    seen.add(mode === 'entity' ? r.entity : r.type);
  }
  return [...seen];
}

/** Where each drawn mark is: its lane and its row within the lane (see stack.ts). */
interface Drawn {
  svg: SVGSVGElement;
  hidden: number;
  /** The drawn marks in time order (the tab order), by row index. */
  order: number[];
  laneOf: Map<number, number>;
}

/** A mark's accessible name: what, to what, when. */
export function markLabel(row: EventRow): string {
  const when = row.timestamp ? ` · ${formatTime(row.timestamp)}` : '';
  return `${row.type} · ${row.entity} v${row.version ?? '?'}${when}`;
}

function drawTimeline(ctx: Context, mode: LaneMode): Drawn {
  const allLanes = lanesOf(ctx.rows, mode);
  const lanes = allLanes.slice(0, MAX_LANES);
  const laneIndex = new Map(lanes.map((name, i) => [name, i]));
  // Time order (then log order) is the tab order and the order marks stack in.
  const timed = ctx.rows
    .filter(r => !Number.isNaN(r.time) && laneIndex.has(mode === 'entity' ? r.entity : r.type))
    .sort((a, b) => a.time - b.time || (a.sequence ?? 0) - (b.sequence ?? 0) || a.index - b.index);
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of timed) {
    lo = Math.min(lo, r.time);
    hi = Math.max(hi, r.time);
  }
  const x = timeScale(timed.length ? [lo, hi] : [0, 0], [LABEL_WIDTH + 8, WIDTH - RIGHT]);
  // Big lists get smaller marks so bursts stay distinguishable.
  const r = ctx.rows.length > 2000 ? 3 : ctx.rows.length > 300 ? 4 : 5.5;
  const pitch = 2 * r + 1.5; // center to center: circles and their 1-unit stroke apart

  const byLane: EventRow[][] = lanes.map(() => []);
  const laneOf = new Map<number, number>();
  for (const row of timed) {
    const lane = laneIndex.get(mode === 'entity' ? row.entity : row.type) as number;
    byLane[lane].push(row);
    laneOf.set(row.index, lane);
  }
  const rowOf = new Map<number, number>();
  const laneRows = byLane.map(list => {
    const stacked = stackRows(list.map(row => x(row.time)), pitch);
    list.forEach((row, i) => rowOf.set(row.index, stacked[i]));
    return stacked.length ? Math.max(...stacked) + 1 : 1;
  });
  const laneHeights = laneRows.map(n => Math.max(LANE_HEIGHT, n * pitch + 6));
  const laneTops: number[] = [];
  let lanesHeight = 0;
  for (const lh of laneHeights) {
    laneTops.push(lanesHeight);
    lanesHeight += lh;
  }

  const height = lanesHeight + AXIS_HEIGHT;
  const svg = s('svg', {
    class: 'asl-timeline-svg',
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: '100%',
    // A group, not an image: an image's children are hidden from assistive technology,
    // and the marks are controls.
    role: 'group',
    'aria-label': `timeline of ${ctx.rows.length} events`,
    preserveAspectRatio: 'xMinYMin meet'
  });
  const lanesG = s('g', { class: 'asl-lanes' });
  lanes.forEach((name, i) => {
    const y = laneTops[i];
    lanesG.appendChild(s('rect', { class: `asl-lane${i % 2 ? ' asl-lane-odd' : ''}`, x: 0, y, width: WIDTH, height: laneHeights[i] }));
    const label = name.length > 22 ? `${name.slice(0, 21)}…` : name;
    lanesG.appendChild(
      s('text', { class: 'asl-lane-label', x: 6, y: y + laneHeights[i] / 2, 'dominant-baseline': 'central' }, s('title', {}, name), label)
    );
  });
  svg.appendChild(lanesG);
  const axis = s('g', { class: 'asl-axis', transform: `translate(0, ${lanesHeight})` });
  axis.appendChild(s('line', { x1: LABEL_WIDTH, x2: WIDTH - RIGHT, y1: 0, y2: 0 }));
  const ticks = x.ticks();
  const step = tickStep(ticks);
  for (const t of ticks) {
    const px = x(t);
    axis.appendChild(s('line', { class: 'asl-tick', x1: px, x2: px, y1: 0, y2: 4 }));
    axis.appendChild(s('text', { class: 'asl-tick-label', x: px, y: 16, 'text-anchor': 'middle' }, formatTick(t, step)));
  }
  for (const { at, text } of axisDates(ticks, step, x.domain[0])) {
    axis.appendChild(s('text', { class: 'asl-axis-date', x: x(at), y: 30, 'text-anchor': 'middle' }, text));
  }
  // The zone, under the lane labels (clear of a first tick at the plot's left edge):
  // every time on the axis is UTC.
  axis.appendChild(s('text', { class: 'asl-axis-zone', x: 6, y: 16 }, 'time (UTC)'));
  svg.appendChild(axis);

  const marks = s('g', { class: 'asl-marks' });
  // Every mark is a tab stop on a short list; on a long one only the current mark is
  // (the arrow keys move), so Tab can still leave the chart.
  const allTabStops = timed.length <= MAX_TAB_STOPS;
  timed.forEach((row, i) => {
    const lane = laneOf.get(row.index) as number;
    const rows = laneRows[lane];
    const top = laneTops[lane] + (laneHeights[lane] - rows * pitch) / 2;
    marks.appendChild(
      s('circle', {
        class: 'asl-mark',
        cx: x(row.time).toFixed(1),
        cy: (top + ((rowOf.get(row.index) as number) + 0.5) * pitch).toFixed(1),
        r,
        fill: ctx.colors.get(row.type),
        tabindex: allTabStops || i === 0 ? 0 : -1,
        role: 'button',
        'aria-pressed': 'false',
        'aria-label': markLabel(row),
        'data-sequence': row.sequence ?? '',
        'data-row': row.index,
        'data-type': row.type
      })
    );
  });
  svg.appendChild(marks);
  return { svg, hidden: allLanes.length - lanes.length, order: timed.map(row => row.index), laneOf };
}

function legend(colors: Map<string, string>): HTMLElement {
  return h('div', { class: 'asl-legend' }, ...[...colors].map(([type, color]) =>
    h('span', { class: 'asl-legend-item', 'data-type': type },
      h('span', { class: 'asl-swatch', style: `background-color: ${color}`, 'data-color': color }),
      type)
  ));
}

function fields(pairs: [string, string | null][]): HTMLElement {
  const dl = h('dl', { class: 'asl-fields' });
  for (const [k, v] of pairs) {
    if (v !== null && v !== '') {
      dl.append(h('dt', {}, k), h('dd', {}, v));
    }
  }
  return dl;
}

function stateSection(ctx: Context, row: EventRow): HTMLElement {
  const { state, source } = ctx.states[row.index];
  const title = `state of ${row.entity} after version ${row.version ?? '?'}`;
  const section = h('section', { class: 'asl-state' }, h('h4', {}, title));
  if (state === null) {
    section.appendChild(
      h('p', { class: 'asl-note' },
        'State not included: the document has no state for this event and versions ' +
        `1..${row.version ?? '?'} of ${row.entity} are not all among the shown events.`)
    );
    return section;
  }
  const before = ctx.previous[row.index];
  const changes: Map<string, Change> | undefined = before ? diffStates(before, state) : undefined;
  const tree = jsonTree(state, { changes, previous: before ?? undefined });
  tree.classList.add('asl-state-tree');
  section.appendChild(tree);
  section.appendChild(
    h('p', { class: 'asl-note' },
      source === 'folded'
        ? 'Folded here from the shown payloads (JSON Merge Patch, in version order).'
        : 'As the store folded it.',
      before ? ' Highlighted: keys this event changed.' : '')
  );
  return section;
}

function pinnedPanel(ctx: Context, row: EventRow, close: () => void): HTMLElement {
  const closeButton = h('button', { class: 'asl-button asl-close', type: 'button', title: 'unpin' }, '×');
  closeButton.addEventListener('click', close);
  const metadata = isObject(row.metadata) && Object.keys(row.metadata).length ? row.metadata : null;
  return h('div', { class: 'asl-pinned', 'data-sequence': row.sequence ?? '' },
    h('div', { class: 'asl-pinned-head' },
      h('span', { class: 'asl-swatch', style: `background-color: ${ctx.colors.get(row.type)}` }),
      h('strong', {}, row.type), ` · ${row.entity} v${row.version ?? '?'}`, closeButton),
    fields([
      ['event type', row.type],
      ['entity', row.entity],
      ['version', row.version === null ? null : String(row.version)],
      ['sequence', row.sequence === null ? null : formatNumber(row.sequence)],
      ['timestamp', row.timestamp && formatTime(row.timestamp)],
      ['recorded at', row.recordedAt && formatTime(row.recordedAt)],
      ['event id', row.eventId],
      ['schema version', row.schemaVersion === null ? null : String(row.schemaVersion)]
    ]),
    h('section', { class: 'asl-payload' }, h('h4', {}, 'payload'), jsonTree(row.payload)),
    metadata ? h('section', { class: 'asl-metadata' }, h('h4', {}, 'metadata'), jsonTree(metadata)) : null,
    stateSection(ctx, row)
  );
}

function tooltipText(row: EventRow): string {
  const payload = JSON.stringify(row.payload, null, 1).replace(/\n\s*/g, ' ');
  const cut = payload.length > TOOLTIP_PAYLOAD_CHARS ? `${payload.slice(0, TOOLTIP_PAYLOAD_CHARS - 1)}…` : payload;
  return `${row.type} · ${row.entity} v${row.version ?? '?'}\n${row.timestamp ? formatTime(row.timestamp) : ''}\n${cut}`;
}

/** Each row's state change as `changeSummary` text, or null when a state is unknown. */
function stateChanges(ctx: Context): (string | null)[] {
  return ctx.rows.map(row => {
    const after = ctx.states[row.index].state;
    const before = ctx.previous[row.index];
    return after && before ? changeSummary(before, after) : null;
  });
}

function header(ctx: Context): HTMLElement {
  const entities = new Set(ctx.rows.map(r => r.entity)).size;
  const query = isObject(ctx.doc['query']) ? ctx.doc['query'] : {};
  const chips = Object.entries(query).map(([k, v]) => h('code', { class: 'asl-chip' }, `${k}=${typeof v === 'string' ? v : JSON.stringify(v)}`));
  const cursor = ctx.doc['next_cursor'];
  return h('div', { class: 'asl-header' },
    h('strong', {}, 'events'),
    ` ${formatNumber(ctx.rows.length)} shown · ${formatNumber(entities)} ${entities === 1 ? 'entity' : 'entities'} · ${formatNumber(ctx.colors.size)} ${ctx.colors.size === 1 ? 'type' : 'types'} `,
    ...chips,
    typeof cursor === 'number' ? h('span', { class: 'asl-muted' }, ` next page: after=${cursor}`) : null
  );
}

/** The body of an `events` document (the caller adds the root and the store line). */
export function renderEvents(doc: JSONObject, table: Table): HTMLElement {
  const rows = eventRows(table);
  const states = rowStates(rows, doc['states'] as JSONValue | undefined);
  const ctx: Context = {
    doc, table, rows, states,
    previous: previousStates(rows, states),
    colors: colorsFor(rows.map(r => r.type))
  };
  const body = h('div', { class: 'asl-events' });
  let mode: LaneMode = 'entity';
  let view: 'timeline' | 'table' = 'timeline';
  const laneButton = h('button', { class: 'asl-button asl-toggle-lanes', type: 'button' });
  const tableButton = h('button', { class: 'asl-button asl-toggle-table', type: 'button' });
  const toolbar = h('div', { class: 'asl-toolbar' }, header(ctx), h('span', { class: 'asl-spacer' }), laneButton, tableButton);
  const chart = h('div', { class: 'asl-timeline' });
  const tooltip = h('div', { class: 'asl-tooltip', hidden: true, role: 'tooltip' });
  const more = h('div', { class: 'asl-more-lanes' });
  const pinned = h('div', { class: 'asl-pinned-slot' });
  const tableSlot = h('div', { class: 'asl-table-slot', hidden: true });
  const footer = h('div', { class: 'asl-footer' }, footerText(table));
  const legendNode = legend(ctx.colors);
  let selected: number | null = null;

  let drawn: Drawn | null = null;

  const markOf = (target: EventTarget | null): SVGElement | null =>
    target instanceof Element ? (target.closest('.asl-mark') as SVGElement | null) : null;
  const markAt = (index: number): SVGElement | null =>
    chart.querySelector(`.asl-mark[data-row="${index}"]`);

  const hideTooltip = () => {
    tooltip.hidden = true;
  };

  const pin = (index: number | null) => {
    selected = index;
    // The tooltip would sit over the card just opened, hiding what was asked for.
    hideTooltip();
    pinned.textContent = '';
    chart.querySelectorAll('.asl-selected').forEach(m => {
      m.classList.remove('asl-selected');
      m.setAttribute('aria-pressed', 'false');
    });
    if (index === null) {
      return;
    }
    const mark = markAt(index);
    mark?.classList.add('asl-selected');
    mark?.setAttribute('aria-pressed', 'true');
    pinned.appendChild(pinnedPanel(ctx, rows[index], () => pin(null)));
  };

  /** Focus the mark of row `index`, making it the chart's tab stop when not all are. */
  const focusMark = (index: number) => {
    const mark = markAt(index);
    if (!mark) {
      return;
    }
    if (mark.getAttribute('tabindex') !== '0') {
      chart.querySelectorAll('.asl-mark[tabindex="0"]').forEach(m => m.setAttribute('tabindex', '-1'));
      mark.setAttribute('tabindex', '0');
    }
    mark.focus();
  };

  /** The row the arrow key `key` moves to from row `index`, or null to stay. */
  const target = (index: number, key: string): number | null => {
    if (!drawn) {
      return null;
    }
    const { order, laneOf } = drawn;
    const at = order.indexOf(index);
    switch (key) {
      case 'ArrowRight':
        return order[at + 1] ?? null;
      case 'ArrowLeft':
        return at > 0 ? order[at - 1] : null;
      case 'Home':
        return order[0] ?? null;
      case 'End':
        return order[order.length - 1] ?? null;
      case 'ArrowUp':
      case 'ArrowDown': {
        // The nearest event in time on the next lane that has one, above or below.
        const lane = laneOf.get(index) as number;
        const lanes = [...new Set(laneOf.values())].sort((a, b) => a - b);
        const next = key === 'ArrowDown' ? lanes.find(l => l > lane) : lanes.filter(l => l < lane).pop();
        if (next === undefined) {
          return null;
        }
        const t = rows[index].time;
        let best: number | null = null;
        for (const i of order) {
          if (laneOf.get(i) === next && (best === null || Math.abs(rows[i].time - t) < Math.abs(rows[best].time - t))) {
            best = i;
          }
        }
        return best;
      }
      default:
        return null;
    }
  };

  const draw = () => {
    drawn = drawTimeline(ctx, mode);
    chart.textContent = '';
    chart.appendChild(drawn.svg);
    chart.appendChild(tooltip);
    more.textContent = drawn.hidden > 0 ? `+${formatNumber(drawn.hidden)} more lanes (not drawn; see the table view)` : '';
    laneButton.textContent = mode === 'entity' ? 'lanes: entity' : 'lanes: event type';
    laneButton.title = `switch to one lane per ${mode === 'entity' ? 'event type' : 'entity'}`;
    pin(selected);
  };

  chart.addEventListener('mouseover', ev => {
    const mark = markOf(ev.target);
    if (!mark) {
      return;
    }
    const index = Number(mark.getAttribute('data-row'));
    if (index === selected) {
      return; // its card is open below: the tooltip would only cover it
    }
    tooltip.textContent = tooltipText(rows[index]);
    tooltip.hidden = false;
  });
  chart.addEventListener('mousemove', ev => {
    if (tooltip.hidden) {
      return;
    }
    const box = chart.getBoundingClientRect();
    const left = ev.clientX - box.left + 12;
    tooltip.style.left = `${Math.min(left, Math.max(0, box.width - 280))}px`;
    // Below the pointer in the upper half, above it in the lower half: never hanging
    // over the pinned card under the chart.
    const y = ev.clientY - box.top;
    if (y > box.height / 2) {
      tooltip.style.top = '';
      tooltip.style.bottom = `${box.height - y + 12}px`;
    } else {
      tooltip.style.bottom = '';
      tooltip.style.top = `${y + 12}px`;
    }
  });
  chart.addEventListener('mouseout', ev => {
    if (markOf(ev.target)) {
      hideTooltip();
    }
  });
  chart.addEventListener('mouseleave', hideTooltip);
  chart.addEventListener('click', ev => {
    const mark = markOf(ev.target);
    if (mark) {
      const index = Number(mark.getAttribute('data-row'));
      pin(index === selected ? null : index);
    }
  });
  chart.addEventListener('keydown', ev => {
    const mark = markOf(ev.target);
    if (!mark || ev.altKey || ev.ctrlKey || ev.metaKey) {
      return;
    }
    const index = Number(mark.getAttribute('data-row'));
    let handled = true;
    if (ev.key === 'Enter' || ev.key === ' ') {
      pin(index === selected ? null : index);
    } else if (ev.key === 'Escape' && selected !== null) {
      pin(null);
    } else {
      const next = target(index, ev.key);
      handled = next !== null || ev.key.startsWith('Arrow');
      if (next !== null) {
        focusMark(next);
      }
    }
    if (handled) {
      // Ours, not the notebook's: Enter would edit the cell, arrows select cells.
      ev.preventDefault();
      ev.stopPropagation();
    }
  });
  laneButton.addEventListener('click', () => {
    mode = mode === 'entity' ? 'type' : 'entity';
    draw();
  });
  tableButton.addEventListener('click', () => {
    view = view === 'timeline' ? 'table' : 'timeline';
    hideTooltip();
    if (view === 'table' && !tableSlot.firstChild) {
      // Built on first use: it can be large.
      tableSlot.appendChild(renderTable(readingOrder(table, stateChanges(ctx))));
    }
    tableSlot.hidden = view !== 'table';
    for (const part of [chart, more, pinned, laneButton, legendNode]) {
      part.hidden = view !== 'timeline';
    }
    footer.hidden = view === 'table'; // the table has its own footer
    tableButton.textContent = view === 'timeline' ? 'table' : 'timeline';
  });
  tableButton.textContent = 'table';

  if (rows.length === 0) {
    body.append(toolbar, h('div', { class: 'asl-empty' }, 'no events'), footer);
    laneButton.hidden = true;
    tableButton.hidden = true;
    return body;
  }
  draw();
  body.append(toolbar, legendNode, chart, more, pinned, tableSlot, footer);
  return body;
}
