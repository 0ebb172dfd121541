/** The rich renderers against the fixture documents: timeline, state diff, window, reports. */

import { diffStates, pathKey } from '../src/diff';
import { MAX_LANES, MAX_TAB_STOPS } from '../src/timeline';
import { all, click, copy, Fixture, fixtures, ofKind, render } from './fixtures';

const COLUMN = (f: Fixture, name: string) =>
  (f.doc.table.columns as { name: string }[]).findIndex(c => c.name === name);

function cells(f: Fixture, name: string): unknown[] {
  const i = COLUMN(f, name);
  return (f.doc.table.rows as unknown[][]).map(r => r[i]);
}

function text(el: Element | null): string {
  return (el?.textContent ?? '').replace(/\s+/g, ' ');
}

/** Each scalar leaf of `obj` as the tree shows it: `"key": value`. */
function leaves(obj: unknown, out: string[] = []): string[] {
  if (obj && typeof obj === 'object' && !Array.isArray(obj)) {
    for (const [k, v] of Object.entries(obj)) {
      if (v && typeof v === 'object' && !Array.isArray(v) && Object.keys(v).length) {
        leaves(v, out);
      } else {
        out.push(`${JSON.stringify(k)}: ${JSON.stringify(v)}`);
      }
    }
  }
  return out;
}

function markOf(root: HTMLElement, sequence: unknown): Element {
  const mark = root.querySelector(`.asl-mark[data-sequence="${sequence}"]`);
  if (!mark) {
    throw new Error(`no mark for sequence ${sequence}`);
  }
  return mark;
}

const eventFixtures = () =>
  ofKind('events', d => d.version === 1 && d.table.rows.length > 0 && new Set(d.table.rows.map((r: unknown[]) => r[3])).size <= MAX_LANES);

describe('events timeline', () => {
  test.each(eventFixtures().map(f => [f.name, f] as const))('%s: one mark per row, one lane per entity', async (_, f) => {
    const { root } = await render(f.doc);
    const marks = all(root, '.asl-timeline .asl-mark');
    expect(marks).toHaveLength(f.doc.table.rows.length);
    expect(marks.map(m => Number(m.getAttribute('data-sequence'))).sort((a, b) => a - b)).toEqual(
      (cells(f, 'sequence') as number[]).slice().sort((a, b) => a - b)
    );
    const entities = new Set(cells(f, 'entity_id'));
    expect(all(root, '.asl-timeline .asl-lane')).toHaveLength(entities.size);
    expect(all(root, '.asl-lane-label title').map(t => t.textContent).sort()).toEqual([...entities].sort());
  });

  test.each(eventFixtures().map(f => [f.name, f] as const))('%s: marks colored as the legend says', async (_, f) => {
    const { root } = await render(f.doc);
    const legend = new Map(all(root, '.asl-legend-item').map(item => [
      item.getAttribute('data-type'),
      item.querySelector('.asl-swatch')?.getAttribute('data-color')
    ]));
    expect([...legend.keys()].sort()).toEqual([...new Set(cells(f, 'event_type'))].sort());
    expect(new Set(legend.values()).size).toBe(legend.size); // one color per type
    for (const mark of all(root, '.asl-mark')) {
      expect(mark.getAttribute('fill')).toBe(legend.get(mark.getAttribute('data-type')));
    }
  });

  test('the lane toggle gives one lane per event type', async () => {
    const [f] = ofKind('events', d => d.version === 1 && new Set(d.table.rows.map((r: unknown[]) => r[2])).size > 1);
    const { root } = await render(f.doc);
    click(root.querySelector('.asl-toggle-lanes') as Element);
    expect(all(root, '.asl-lane')).toHaveLength(new Set(cells(f, 'event_type')).size);
    expect(all(root, '.asl-mark')).toHaveLength(f.doc.table.rows.length);
  });

  test('hover shows the payload in a tooltip', async () => {
    const [f] = ofKind('events', d => d.version === 1 && d.table.rows.length > 1);
    const { root } = await render(f.doc);
    const tooltip = root.querySelector('.asl-tooltip') as HTMLElement;
    expect(tooltip.hidden).toBe(true);
    const seq = cells(f, 'sequence')[1];
    markOf(root, seq).dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    expect(tooltip.hidden).toBe(false);
    const payload = cells(f, 'payload')[1] as object;
    for (const key of Object.keys(payload)) {
      expect(text(tooltip)).toContain(JSON.stringify(key));
    }
    markOf(root, seq).dispatchEvent(new MouseEvent('mouseout', { bubbles: true }));
    expect(tooltip.hidden).toBe(true);
  });

  test('click pins the event, its payload and the state the document gives', async () => {
    const [f] = ofKind('events', d => d.version === 1 && (d.states ?? []).some((s: unknown) => s !== null));
    const { root } = await render(f.doc);
    expect(root.querySelector('.asl-pinned')).toBeNull();
    const i = (f.doc.states as unknown[]).findIndex(s => s !== null && Object.keys(s as object).length > 1);
    const seq = cells(f, 'sequence')[i];
    click(markOf(root, seq));
    const pinned = root.querySelector('.asl-pinned') as HTMLElement;
    expect(pinned.getAttribute('data-sequence')).toBe(String(seq));
    for (const fact of [cells(f, 'event_type')[i], cells(f, 'entity_id')[i], String(seq)]) {
      expect(text(pinned)).toContain(fact);
    }
    for (const leaf of leaves(cells(f, 'payload')[i])) {
      expect(text(pinned.querySelector('.asl-payload'))).toContain(leaf);
    }
    const state = pinned.querySelector('.asl-state .asl-state-tree');
    for (const leaf of leaves(f.doc.states[i])) {
      expect(text(state)).toContain(leaf);
    }
    expect(markOf(root, seq).classList.contains('asl-selected')).toBe(true);
    click(pinned.querySelector('.asl-close') as Element);
    expect(root.querySelector('.asl-pinned')).toBeNull();
  });

  test('without states, the state is the merge-patch fold of the shown payloads', async () => {
    // A document whose entities are shown from version 1: the store's states are the
    // reference for the fold done here.
    const [f] = ofKind('events', d => d.version === 1 && d.query && Object.keys(d.query).length === 0 && (d.states ?? []).every((s: unknown) => s !== null));
    const doc = copy(f.doc);
    delete doc.states;
    const { root } = await render(doc);
    const versions = cells(f, 'version') as number[];
    let checked = 0;
    versions.forEach((v, i) => {
      if (v < 2) {
        return;
      }
      click(markOf(root, cells(f, 'sequence')[i]));
      const section = root.querySelector('.asl-pinned .asl-state') as HTMLElement;
      expect(text(section)).toContain('Merge Patch');
      const tree = section.querySelector('.asl-state-tree');
      const expected = leaves(f.doc.states[i]);
      const shown = all(tree as Element, '.asl-json-row')
        .filter(r => !r.closest('.asl-diff-removed') && !r.querySelector('.asl-json-summary')).map(text);
      expect(shown.map(s => s.replace(/^[+~] ?/, '')).sort()).toEqual(expected.sort());
      checked += 1;
    });
    expect(checked).toBeGreaterThan(0);
  });

  test('without states, an event whose earlier versions are not shown has no state', async () => {
    const hasLater = (rows: unknown[][]) =>
      rows.some(first => first[4] === 1 && rows.some(r => r[3] === first[3] && (r[4] as number) > 1));
    const [f] = ofKind('events', d => d.version === 1 && hasLater(d.table.rows));
    const doc = copy(f.doc);
    delete doc.states;
    const rows = doc.table.rows as unknown[][];
    const laterOf = (first: unknown[]) => rows.find(r => r[3] === first[3] && (r[4] as number) > 1);
    const first = rows.find(r => r[4] === 1 && laterOf(r)) as unknown[];
    const later = laterOf(first);
    doc.table.rows = doc.table.rows.filter((r: unknown[]) => r !== first);
    const { root } = await render(doc);
    click(markOf(root, (later as unknown[])[0]));
    expect(text(root.querySelector('.asl-pinned .asl-state'))).toContain('State not included');
    expect(root.querySelector('.asl-pinned .asl-state-tree')).toBeNull();
  });

  test('the table toggle switches to a table of every row and back', async () => {
    const [f] = eventFixtures();
    const { root } = await render(f.doc);
    const toggle = root.querySelector('.asl-toggle-table') as HTMLElement;
    expect(root.querySelector('.asl-table')).toBeNull();
    click(toggle);
    expect((root.querySelector('.asl-timeline') as HTMLElement).hidden).toBe(true);
    expect(all(root, '.asl-table tbody tr')).toHaveLength(f.doc.table.rows.length);
    click(toggle);
    expect((root.querySelector('.asl-timeline') as HTMLElement).hidden).toBe(false);
    expect((root.querySelector('.asl-table-slot') as HTMLElement).hidden).toBe(true);
  });

  test('a cut list says "showing N of M"', async () => {
    const [f] = ofKind('events', d => d.version === 1);
    const doc = copy(f.doc);
    doc.table.total = doc.table.rows.length + 1000;
    doc.table.truncated = true;
    const { root } = await render(doc);
    expect(text(root.querySelector('.asl-events > .asl-footer'))).toBe(
      `showing ${doc.table.rows.length} of ${(doc.table.rows.length + 1000).toLocaleString('en-US')}`
    );
  });

  test('thousands of events over many entities: capped lanes, one element per mark', async () => {
    const [f] = ofKind('events', d => d.version === 1 && d.table.rows.length > 0);
    const doc = copy(f.doc);
    const template = doc.table.rows[0] as unknown[];
    const n = 5000;
    const t0 = Date.parse('2026-03-02T09:00:00Z');
    doc.table.rows = Array.from({ length: n }, (_, i) => {
      const row = [...template];
      row[0] = i + 1;
      row[3] = `entity-${i % 80}`;
      row[4] = Math.floor(i / 80) + 1;
      row[5] = new Date(t0 + i * 1000).toISOString().replace('.000Z', 'Z');
      return row;
    });
    doc.states = null;
    doc.table.total = n;
    const started = Date.now();
    const { root } = await render(doc);
    const elapsed = Date.now() - started;
    expect(all(root, '.asl-lane')).toHaveLength(MAX_LANES);
    expect(text(root.querySelector('.asl-more-lanes'))).toContain(`+${80 - MAX_LANES} more lanes`);
    const marks = all(root, '.asl-mark');
    expect(marks.length).toBe(all(root, '.asl-marks > *').length);
    expect(marks.length).toBe(Array.from({ length: n }).filter((_, i) => i % 80 < MAX_LANES).length);
    expect(elapsed).toBeLessThan(10_000); // a guard against quadratic work, not a benchmark
  });
});

/**
 * An events document from the fixtures' template row with the given events: each
 * `[entity, type, time, payload]`, versions counted per entity, sequences in list order.
 */
function eventsDoc(events: [string, string, string, object][]): Fixture['doc'] {
  const [f] = ofKind('events', d => d.version === 1 && d.table.rows.length > 0);
  const doc = copy(f.doc);
  const at = (name: string) => COLUMN(f, name);
  const versions = new Map<string, number>();
  doc.table.rows = events.map(([entity, type, time, payload], i) => {
    const row = [...(doc.table.rows[0] as unknown[])];
    versions.set(entity, (versions.get(entity) ?? 0) + 1);
    row[at('sequence')] = i + 1;
    row[at('event_id')] = `00000000-0000-7000-8000-${String(i + 1).padStart(12, '0')}`;
    row[at('entity_id')] = entity;
    row[at('event_type')] = type;
    row[at('version')] = versions.get(entity);
    row[at('timestamp')] = time;
    row[at('payload')] = payload;
    return row;
  });
  doc.table.total = events.length;
  doc.table.truncated = false;
  delete doc.states;
  doc.query = {};
  return doc;
}

// order-47 placed, corrected and paid within minutes, in a day of other orders.
const BURST: [string, string, string, object][] = [
  ['order-1', 'order.placed', '2026-01-01T04:00:00Z', { amount: 5 }],
  ['order-47', 'order.placed', '2026-01-01T09:00:00Z', { amount: 10, sku: 'tea' }],
  ['order-47', 'order.corrected', '2026-01-01T09:02:00Z', { amount: 12 }],
  ['order-47', 'order.paid', '2026-01-01T09:05:00Z', { paid: true }],
  ['order-1', 'order.paid', '2026-01-01T14:00:00Z', { paid: true }]
];

const circle = (m: Element) => ({
  x: Number(m.getAttribute('cx')), y: Number(m.getAttribute('cy')), r: Number(m.getAttribute('r'))
});

describe('timeline details (issue 18)', () => {
  test('events minutes apart on one entity are drawn apart, none covering another', async () => {
    const { root } = await render(eventsDoc(BURST));
    const marks = all(root, '.asl-mark').map(circle);
    expect(marks).toHaveLength(BURST.length);
    for (let i = 0; i < marks.length; i++) {
      for (let j = i + 1; j < marks.length; j++) {
        const [a, b] = [marks[i], marks[j]];
        expect(Math.hypot(a.x - b.x, a.y - b.y)).toBeGreaterThanOrEqual(a.r + b.r);
      }
    }
  });

  test('stacked marks stay inside their lane, which grows to hold them', async () => {
    const { root } = await render(eventsDoc(BURST));
    const lanes = all(root, '.asl-lane').map(l => ({
      top: Number(l.getAttribute('y')), bottom: Number(l.getAttribute('y')) + Number(l.getAttribute('height'))
    }));
    const burst = all(root, '.asl-mark').filter(m => m.getAttribute('aria-label')?.includes('order-47')).map(circle);
    expect(new Set(burst.map(c => c.y)).size).toBe(3);
    const lane = lanes.find(l => burst[0].y > l.top && burst[0].y < l.bottom) as { top: number; bottom: number };
    for (const c of burst) {
      expect(c.y - c.r).toBeGreaterThanOrEqual(lane.top);
      expect(c.y + c.r).toBeLessThanOrEqual(lane.bottom);
    }
  });

  test('pinning hides the tooltip, and hovering the pinned mark does not bring it back', async () => {
    const { root } = await render(eventsDoc(BURST));
    const tooltip = root.querySelector('.asl-tooltip') as HTMLElement;
    const mark = markOf(root, 3);
    mark.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    expect(tooltip.hidden).toBe(false);
    click(mark);
    expect(root.querySelector('.asl-pinned')).not.toBeNull();
    expect(tooltip.hidden).toBe(true);
    mark.dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    expect(tooltip.hidden).toBe(true);
    markOf(root, 2).dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    expect(tooltip.hidden).toBe(false); // another mark still gets one
  });

  test('the tooltip hides when the pointer leaves the chart', async () => {
    const { root } = await render(eventsDoc(BURST));
    const tooltip = root.querySelector('.asl-tooltip') as HTMLElement;
    markOf(root, 1).dispatchEvent(new MouseEvent('mouseover', { bubbles: true }));
    expect(tooltip.hidden).toBe(false);
    root.querySelector('.asl-timeline')?.dispatchEvent(new MouseEvent('mouseleave'));
    expect(tooltip.hidden).toBe(true);
  });

  test('an axis within one day shows the date and the zone', async () => {
    const { root } = await render(eventsDoc(BURST));
    const axis = text(root.querySelector('.asl-axis'));
    expect(axis).toContain('2026-01-01');
    expect(axis).toContain('UTC');
    expect(all(root, '.asl-axis .asl-tick-label').map(text)).toContain('06:00');
  });

  test('an axis across midnight names both days', async () => {
    const { root } = await render(eventsDoc([
      ['a', 't', '2026-01-01T20:00:00Z', {}], ['a', 't', '2026-01-02T06:00:00Z', {}]
    ]));
    const dates = all(root, '.asl-axis .asl-axis-date').map(text);
    expect(dates).toEqual(['2026-01-01', '2026-01-02']);
  });

  test('the table view shows payload and state change first and the ids last', async () => {
    const { root } = await render(eventsDoc(BURST));
    click(root.querySelector('.asl-toggle-table') as Element);
    const heads = all(root, '.asl-table th').map(text);
    expect(heads.slice(0, 2)).toEqual(['payload', 'state change']);
    expect(heads.slice(-2)).toEqual(['sequence', 'event_id']);
    const corrected = all(root, '.asl-table tbody tr')[2];
    const cells = all(corrected, 'td').map(text);
    expect(cells[0]).toBe('{"amount":12}');
    expect(cells[1]).toBe('~amount');
  });

  test('marks are focusable in time order and named for their event', async () => {
    // Rows out of time order: the tab order must follow time, not the rows.
    const shuffled = [BURST[3], BURST[0], BURST[4], BURST[1], BURST[2]];
    const { root } = await render(eventsDoc(shuffled));
    const marks = all(root, '.asl-mark');
    expect(marks.every(m => m.getAttribute('tabindex') === '0')).toBe(true);
    expect(marks.map(m => m.getAttribute('aria-label'))).toEqual([
      'order.placed · order-1 v1 · 2026-01-01 04:00:00Z',
      'order.placed · order-47 v2 · 2026-01-01 09:00:00Z', // versions count in row order here
      'order.corrected · order-47 v3 · 2026-01-01 09:02:00Z',
      'order.paid · order-47 v1 · 2026-01-01 09:05:00Z',
      'order.paid · order-1 v2 · 2026-01-01 14:00:00Z'
    ]);
    expect(root.querySelector('svg')?.getAttribute('role')).not.toBe('img');
  });

  test('Enter and Space pin the focused mark, Escape unpins, and the notebook never sees the keys', async () => {
    const { root } = await render(eventsDoc(BURST));
    const seen: string[] = [];
    const listener = (ev: KeyboardEvent) => seen.push(ev.key);
    document.addEventListener('keydown', listener);
    try {
      const mark = markOf(root, 3) as SVGElement;
      mark.focus();
      expect(document.activeElement).toBe(mark);
      const key = (k: string) => mark.dispatchEvent(new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
      key('Enter');
      expect(root.querySelector('.asl-pinned')?.getAttribute('data-sequence')).toBe('3');
      expect(mark.getAttribute('aria-pressed')).toBe('true');
      key('Escape');
      expect(root.querySelector('.asl-pinned')).toBeNull();
      key(' ');
      expect(root.querySelector('.asl-pinned')?.getAttribute('data-sequence')).toBe('3');
      key(' ');
      expect(root.querySelector('.asl-pinned')).toBeNull();
      expect(seen).toEqual([]);
    } finally {
      document.removeEventListener('keydown', listener);
    }
  });

  test('arrow keys move the focus through time and between lanes', async () => {
    const { root } = await render(eventsDoc(BURST));
    const press = (k: string) => (document.activeElement as Element).dispatchEvent(
      new KeyboardEvent('keydown', { key: k, bubbles: true, cancelable: true }));
    const focused = () => document.activeElement?.getAttribute('data-sequence');
    (markOf(root, 1) as SVGElement).focus();
    press('ArrowRight');
    expect(focused()).toBe('2');
    press('ArrowRight');
    expect(focused()).toBe('3');
    press('ArrowLeft');
    expect(focused()).toBe('2');
    press('End');
    expect(focused()).toBe('5');
    press('ArrowRight');
    expect(focused()).toBe('5'); // the last stays
    press('ArrowDown'); // order-1 is the first lane, order-47 the second: nearest in time
    expect(focused()).toBe('4');
    press('ArrowUp');
    expect(focused()).toBe('5');
    press('Home');
    expect(focused()).toBe('1');
  });

  test('on a long list one mark is the tab stop, and it follows the arrow keys', async () => {
    const n = MAX_TAB_STOPS + 10;
    const events = Array.from({ length: n }, (_, i): [string, string, string, object] =>
      [`e-${i % 5}`, 't', new Date(Date.parse('2026-01-01T00:00:00Z') + i * 60_000).toISOString(), {}]);
    const { root } = await render(eventsDoc(events));
    const stops = () => all(root, '.asl-mark[tabindex="0"]').map(m => m.getAttribute('data-sequence'));
    expect(all(root, '.asl-mark')).toHaveLength(n);
    expect(stops()).toEqual(['1']);
    (markOf(root, 1) as SVGElement).focus();
    (document.activeElement as Element).dispatchEvent(new KeyboardEvent('keydown', { key: 'ArrowRight', bubbles: true }));
    expect(stops()).toEqual(['2']);
    expect(document.activeElement?.getAttribute('data-sequence')).toBe('2');
  });
});

describe('state', () => {
  test.each(ofKind('state', d => d.previous_state).map(f => [f.name, f] as const))(
    '%s: diff classes on exactly the changed keys', async (_, f) => {
      const { root } = await render(f.doc);
      const tree = root.querySelector('.asl-state-tree') as HTMLElement;
      const expected = diffStates(f.doc.previous_state, f.doc.state);
      expect(expected.size).toBeGreaterThan(0);
      for (const change of ['added', 'changed', 'removed']) {
        const marked = all(tree, `.asl-diff-${change}`).map(el => el.getAttribute('data-path')).sort();
        const want = [...expected].filter(([, c]) => c === change).map(([p]) => p).sort();
        expect(marked).toEqual(want);
        for (const el of all(tree, `.asl-diff-${change}`)) {
          expect(el.querySelector('.asl-diff-marker')).not.toBeNull();
        }
      }
      expect(text(root)).toContain(String(f.doc.entity_id));
      expect(text(root)).toContain(`version ${f.doc.entity_version}`);
    });

  test('hand-checked diff: one added, one changed nested, one removed', async () => {
    const doc = {
      version: 1, kind: 'state', entity_id: 'order-1', entity_version: 3, as_of: '2026-01-01T12:00:00Z', known_at: null,
      previous_state: { amount: 5, items: { tea: 1, jam: 2 }, note: 'x' },
      state: { amount: 5, items: { tea: 2, jam: 2 }, paid: true }
    };
    const { root } = await render(doc);
    const paths = (c: string) => all(root, `.asl-diff-${c}`).map(e => e.getAttribute('data-path'));
    expect(paths('added')).toEqual([pathKey(['paid'])]);
    expect(paths('changed')).toEqual([pathKey(['items', 'tea'])]);
    expect(paths('removed')).toEqual([pathKey(['note'])]);
    expect(text(root.querySelector('.asl-diff-removed'))).toContain('"note": "x"');
    expect(text(root)).toContain('as of 2026-01-01 12:00:00Z');
  });

  test('without a previous state the tree has no diff', async () => {
    const [f] = ofKind('state', d => !d.previous_state);
    const { root } = await render(f.doc);
    expect(root.querySelector('.asl-state-tree')).not.toBeNull();
    expect(root.querySelector('[class*="asl-diff-"]')).toBeNull();
    for (const leaf of leaves(f.doc.state)) {
      expect(text(root.querySelector('.asl-state-tree'))).toContain(leaf);
    }
  });
});

describe('window', () => {
  const numeric = (f: Fixture) => (f.doc.table.columns as { type: string }[]).filter(c => c.type === 'integer' || c.type === 'number');
  const keyColumns = (f: Fixture) => (f.doc.table.columns as { name: string; type: string }[])
    .map((c, i) => [c, i] as const)
    .filter(([c]) => !['window_start', 'window_end'].includes(c.name) && c.type !== 'integer' && c.type !== 'number');

  test.each(ofKind('window', d => d.table.rows.length > 0).map(f => [f.name, f] as const))('%s: chart and table', async (_, f) => {
    const { root } = await render(f.doc);
    const chart = root.querySelector('.asl-window-chart') as HTMLElement;
    expect(chart).not.toBeNull();
    expect(all(root, '.asl-table tbody tr')).toHaveLength(f.doc.table.rows.length);
    const keys = keyColumns(f);
    if (keys.length === 0) {
      expect(all(chart, '.asl-bar')).toHaveLength(f.doc.table.rows.length);
      expect(all(chart, '.asl-line')).toHaveLength(0);
    } else {
      const distinct = new Set((f.doc.table.rows as unknown[][]).map(r => keys.map(([, i]) => String(r[i])).join(' · ')));
      expect(all(chart, '.asl-line')).toHaveLength(distinct.size);
      expect(all(chart, '.asl-bar')).toHaveLength(0);
    }
    expect(chart.getAttribute('data-column')).toBe((numeric(f)[0] as unknown as { name: string }).name);
  });

  test('the selector charts another aggregate', async () => {
    const [f] = ofKind('window', d => d.table.columns.filter((c: { type: string }) => c.type === 'integer' || c.type === 'number').length > 1);
    const { root } = await render(f.doc);
    const select = root.querySelector('.asl-window-select') as HTMLSelectElement;
    expect(select.options).toHaveLength(numeric(f).length);
    select.value = select.options[1].value;
    select.dispatchEvent(new Event('change'));
    expect(root.querySelector('.asl-window-chart')?.getAttribute('data-column')).toBe(select.options[1].textContent);
  });

  test('a chart of a cut table says it shows only the first windows', async () => {
    const [f] = ofKind('window', d => d.table.rows.length > 1);
    const whole = await render(f.doc);
    expect(whole.root.querySelector('.asl-window-note')).toBeNull();
    const shown = (f.doc.table.rows as unknown[]).slice(0, 1);
    const cut = { ...f.doc, table: { ...f.doc.table, rows: shown, total: 60, truncated: true } };
    const { root } = await render(cut);
    expect(root.querySelector('.asl-window-chart')?.getAttribute('data-truncated')).toBe('true');
    expect(text(root.querySelector('.asl-window-note') as HTMLElement)).toContain('the first 1 of 60 windows');
  });
});

describe('reports', () => {
  test('integrity problems are listed and highlighted with file and offset', async () => {
    for (const f of ofKind('integrity', d => d.ok === false)) {
      const { root } = await render(f.doc);
      const report = root.querySelector('.asl-report') as HTMLElement;
      const problems = all(report, '.asl-problem');
      expect(problems.map(text).map(t => t.trim())).toEqual(
        (f.doc.problems as string[]).map(p => expect.stringContaining(p))
      );
      const first = problems[0];
      expect(first.querySelector('.asl-problem-file')).not.toBeNull();
      expect(report.querySelector('.asl-badge.asl-bad')).not.toBeNull();
    }
    const withOffset = fixtures().flatMap(f => f.doc.kind === 'integrity' ? f.doc.problems as string[] : []).find(p => / at byte \d+/.test(p));
    expect(withOffset).toBeDefined();
  });

  test('a clean integrity report is an OK badge', async () => {
    const [f] = ofKind('integrity', d => d.ok === true);
    const { root } = await render(f.doc);
    expect(text(root.querySelector('.asl-badge.asl-ok'))).toBe('OK');
    expect(root.querySelector('.asl-problem')).toBeNull();
    expect(text(root)).toContain(`${f.doc.files_checked} files checked`);
  });

  test('schema report: compatible or not, problems highlighted', async () => {
    const [f] = ofKind('schema_report');
    const { root } = await render(f.doc);
    expect(root.querySelector('.asl-report')).not.toBeNull();
    expect(all(root, '.asl-problem')).toHaveLength(f.doc.problems.length);
    expect(text(root)).toContain(f.doc.compatible ? 'compatible' : 'not compatible');
    const ok = copy(f.doc);
    Object.assign(ok, { compatible: true, problems: [] });
    const rendered = await render(ok);
    expect(rendered.root.querySelector('.asl-badge.asl-ok')).not.toBeNull();
    expect(rendered.root.querySelector('.asl-problem')).toBeNull();
  });

  test('stats numbers have thousands separators and nested dicts are indented', async () => {
    const [f] = ofKind('stats');
    const doc = copy(f.doc);
    doc.stats.events = 1234567;
    doc.stats.nested = { inner_count: 98765, deeper: { x: 1 } };
    const { root } = await render(doc);
    expect(text(root)).toContain('1,234,567');
    const nested = root.querySelector('.asl-kv-nested') as HTMLElement;
    expect(text(nested)).toContain('98,765');
    expect(nested.querySelector('.asl-kv-nested')).not.toBeNull();
  });

  test('progress is a bar', async () => {
    const [f] = ofKind('progress');
    const { root } = await render(f.doc);
    const bar = root.querySelector('progress') as HTMLProgressElement;
    expect(Number(bar.getAttribute('value'))).toBe(f.doc.done);
    expect(Number(bar.getAttribute('max'))).toBe(f.doc.total);
  });
});
