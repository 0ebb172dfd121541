/**
 * The `events` kind: a timeline drawn as one SVG, one lane per entity (or per event
 * type), with a legend, a hover tooltip, a click-to-pin detail panel and a table view.
 *
 * One SVG element per mark and a single delegated listener keep thousands of events
 * responsive; lanes past MAX_LANES are summarised, not drawn.
 */

import { Change, diffStates } from './diff';
import { h, s } from './dom';
import { formatNumber, formatTime } from './format';
import { EventRow, eventRows, previousStates, rowStates, RowState } from './events';
import { jsonTree } from './jsontree';
import { colorsFor } from './palette';
import { formatTick, tickStep, timeScale } from './scale';
import { footerText, renderTable } from './table';
import { isObject, JSONObject, JSONValue, Table } from './types';

// Lanes drawn before "+K more lanes": past ~30 the labels stop being readable.
export const MAX_LANES = 30;
const WIDTH = 800; // SVG user units; the SVG scales to the output's width
const LABEL_WIDTH = 150;
const RIGHT = 16;
const LANE_HEIGHT = 22;
const AXIS_HEIGHT = 26;
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

function drawTimeline(ctx: Context, mode: LaneMode): { svg: SVGSVGElement; hidden: number } {
  const allLanes = lanesOf(ctx.rows, mode);
  const lanes = allLanes.slice(0, MAX_LANES);
  const laneIndex = new Map(lanes.map((name, i) => [name, i]));
  const timed = ctx.rows.filter(r => !Number.isNaN(r.time));
  let lo = Infinity;
  let hi = -Infinity;
  for (const r of timed) {
    lo = Math.min(lo, r.time);
    hi = Math.max(hi, r.time);
  }
  const x = timeScale(timed.length ? [lo, hi] : [0, 0], [LABEL_WIDTH + 8, WIDTH - RIGHT]);
  const height = lanes.length * LANE_HEIGHT + AXIS_HEIGHT;
  const svg = s('svg', {
    class: 'asl-timeline-svg',
    viewBox: `0 0 ${WIDTH} ${height}`,
    width: '100%',
    role: 'img',
    'aria-label': `timeline of ${ctx.rows.length} events`,
    preserveAspectRatio: 'xMinYMin meet'
  });
  const lanesG = s('g', { class: 'asl-lanes' });
  lanes.forEach((name, i) => {
    const y = i * LANE_HEIGHT;
    lanesG.appendChild(s('rect', { class: `asl-lane${i % 2 ? ' asl-lane-odd' : ''}`, x: 0, y, width: WIDTH, height: LANE_HEIGHT }));
    const label = name.length > 22 ? `${name.slice(0, 21)}…` : name;
    lanesG.appendChild(
      s('text', { class: 'asl-lane-label', x: 6, y: y + LANE_HEIGHT / 2, 'dominant-baseline': 'central' }, s('title', {}, name), label)
    );
  });
  svg.appendChild(lanesG);
  const axis = s('g', { class: 'asl-axis', transform: `translate(0, ${lanes.length * LANE_HEIGHT})` });
  axis.appendChild(s('line', { x1: LABEL_WIDTH, x2: WIDTH - RIGHT, y1: 0, y2: 0 }));
  const ticks = x.ticks();
  const step = tickStep(ticks);
  for (const t of ticks) {
    const px = x(t);
    axis.appendChild(s('line', { class: 'asl-tick', x1: px, x2: px, y1: 0, y2: 4 }));
    axis.appendChild(s('text', { x: px, y: 16, 'text-anchor': 'middle' }, formatTick(t, step)));
  }
  svg.appendChild(axis);
  // Big lists get smaller marks so bursts stay distinguishable.
  const r = ctx.rows.length > 2000 ? 3 : ctx.rows.length > 300 ? 4 : 5.5;
  const marks = s('g', { class: 'asl-marks' });
  for (const row of timed) {
    const lane = laneIndex.get(mode === 'entity' ? row.entity : row.type);
    if (lane === undefined) {
      continue;
    }
    marks.appendChild(
      s('circle', {
        class: 'asl-mark',
        cx: x(row.time).toFixed(1),
        cy: lane * LANE_HEIGHT + LANE_HEIGHT / 2,
        r,
        fill: ctx.colors.get(row.type),
        'data-sequence': row.sequence ?? '',
        'data-row': row.index,
        'data-type': row.type
      })
    );
  }
  svg.appendChild(marks);
  return { svg, hidden: allLanes.length - lanes.length };
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

  const markOf = (target: EventTarget | null): SVGElement | null =>
    target instanceof Element ? (target.closest('.asl-mark') as SVGElement | null) : null;

  const pin = (index: number | null) => {
    selected = index;
    pinned.textContent = '';
    chart.querySelectorAll('.asl-selected').forEach(m => m.classList.remove('asl-selected'));
    if (index === null) {
      return;
    }
    chart.querySelector(`.asl-mark[data-row="${index}"]`)?.classList.add('asl-selected');
    pinned.appendChild(pinnedPanel(ctx, rows[index], () => pin(null)));
  };

  const draw = () => {
    const { svg, hidden } = drawTimeline(ctx, mode);
    chart.textContent = '';
    chart.appendChild(svg);
    chart.appendChild(tooltip);
    more.textContent = hidden > 0 ? `+${formatNumber(hidden)} more lanes (not drawn; see the table view)` : '';
    laneButton.textContent = mode === 'entity' ? 'lanes: entity' : 'lanes: event type';
    laneButton.title = `switch to one lane per ${mode === 'entity' ? 'event type' : 'entity'}`;
    pin(selected);
  };

  chart.addEventListener('mouseover', ev => {
    const mark = markOf(ev.target);
    if (!mark) {
      return;
    }
    tooltip.textContent = tooltipText(rows[Number(mark.getAttribute('data-row'))]);
    tooltip.hidden = false;
  });
  chart.addEventListener('mousemove', ev => {
    if (tooltip.hidden) {
      return;
    }
    const box = chart.getBoundingClientRect();
    const left = ev.clientX - box.left + 12;
    tooltip.style.left = `${Math.min(left, Math.max(0, box.width - 280))}px`;
    tooltip.style.top = `${ev.clientY - box.top + 12}px`;
  });
  chart.addEventListener('mouseout', ev => {
    if (markOf(ev.target)) {
      tooltip.hidden = true;
    }
  });
  chart.addEventListener('click', ev => {
    const mark = markOf(ev.target);
    if (mark) {
      const index = Number(mark.getAttribute('data-row'));
      pin(index === selected ? null : index);
    }
  });
  laneButton.addEventListener('click', () => {
    mode = mode === 'entity' ? 'type' : 'entity';
    draw();
  });
  tableButton.addEventListener('click', () => {
    view = view === 'timeline' ? 'table' : 'timeline';
    if (view === 'table' && !tableSlot.firstChild) {
      tableSlot.appendChild(renderTable(table)); // built on first use: it can be large
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
