/** The pure parts: merge patch and the state fold, the diff, scales, formatting. */

import { changeSummary, diffStates, jsonEqual, pathKey } from '../src/diff';
import { eventRows, previousStates, readingOrder, rowStates, STATE_CHANGE_COLUMN } from '../src/events';
import { formatBytes, formatCell, formatNumber, parseTime } from '../src/format';
import { foldStates, mergePatch } from '../src/mergepatch';
import { problemParts } from '../src/reports';
import { axisDates, formatTick, tickStep, timeScale, valueScale } from '../src/scale';
import { MAX_STACK_ROWS, stackRows } from '../src/stack';
import { Table } from '../src/types';

describe('mergePatch (RFC 7386)', () => {
  // The examples of RFC 7386 appendix A.
  const cases: [unknown, unknown, unknown][] = [
    [{ a: 'b' }, { a: 'c' }, { a: 'c' }],
    [{ a: 'b' }, { b: 'c' }, { a: 'b', b: 'c' }],
    [{ a: 'b' }, { a: null }, {}],
    [{ a: 'b', b: 'c' }, { a: null }, { b: 'c' }],
    [{ a: ['b'] }, { a: 'c' }, { a: 'c' }],
    [{ a: 'c' }, { a: ['b'] }, { a: ['b'] }],
    [{ a: { b: 'c' } }, { a: { b: 'd', c: null } }, { a: { b: 'd' } }],
    [{ a: [{ b: 'c' }] }, { a: [1] }, { a: [1] }],
    [['a', 'b'], ['c', 'd'], ['c', 'd']],
    [{ a: 'b' }, ['c'], ['c']],
    [{ a: 'foo' }, null, null],
    [{ a: 'foo' }, 'bar', 'bar'],
    [{ e: null }, { a: 1 }, { e: null, a: 1 }],
    [[1, 2], { a: 'b', c: null }, { a: 'b' }],
    [{}, { a: { bb: { ccc: null } } }, { a: { bb: {} } }]
  ];
  test.each(cases)('%j patched with %j is %j', (target, patch, expected) => {
    const before = JSON.stringify(target);
    expect(mergePatch(target as never, patch as never)).toEqual(expected);
    expect(JSON.stringify(target)).toBe(before); // the target is not modified
  });
});

describe('foldStates', () => {
  test('folds versions 1..v in version order, whatever the row order', () => {
    const states = foldStates([
      { version: 2, payload: { paid: true, note: null } },
      { version: 1, payload: { amount: 5, note: 'x' } },
      { version: 3, payload: { amount: 7 } }
    ]);
    expect(states.get(1)).toEqual({ amount: 5, note: 'x' });
    expect(states.get(2)).toEqual({ amount: 5, paid: true });
    expect(states.get(3)).toEqual({ amount: 7, paid: true });
  });

  test('knows no state from a gap onwards', () => {
    const states = foldStates([
      { version: 1, payload: { a: 1 } },
      { version: 3, payload: { a: 3 } },
      { version: 4, payload: { a: 4 } }
    ]);
    expect(states.get(1)).toEqual({ a: 1 });
    expect(states.get(3)).toBeNull();
    expect(states.get(4)).toBeNull();
  });

  test('knows nothing when version 1 is not shown', () => {
    expect(foldStates([{ version: 2, payload: { a: 1 } }]).get(2)).toBeNull();
  });
});

describe('rowStates', () => {
  const table: Table = {
    columns: ['sequence', 'event_type', 'entity_id', 'version', 'timestamp', 'payload'].map(name => ({
      name,
      type: name === 'payload' ? 'json' : 'string'
    })),
    rows: [
      [1, 't', 'a', 1, '2026-01-01T00:00:00Z', { n: 1 }],
      [2, 't', 'b', 2, '2026-01-01T00:00:01Z', { n: 2 }],
      [3, 't', 'a', 2, '2026-01-01T00:00:02Z', { m: 1 }]
    ],
    total: 3,
    truncated: false
  };
  const rows = eventRows(table);

  test('prefers the document states and folds only the missing ones', () => {
    const given = [null, { from: 'doc' }, null];
    const states = rowStates(rows, given);
    expect(states.map(s => s.source)).toEqual(['folded', 'document', 'folded']);
    expect(states[2].state).toEqual({ n: 1, m: 1 });
    expect(previousStates(rows, states)).toEqual([{}, null, { n: 1 }]);
  });

  test('ignores a states list that is not aligned with the rows', () => {
    const states = rowStates(rows, [{ x: 1 }]);
    expect(states[0]).toEqual({ state: { n: 1 }, source: 'folded' });
    expect(states[1]).toEqual({ state: null, source: null }); // b starts at version 2
  });
});

describe('diffStates', () => {
  test('reports exactly the keys that differ, nested keys by their own path', () => {
    const changes = diffStates(
      { amount: 1, lines: { a: 1, b: 2 }, gone: true, same: [1, 2] },
      { amount: 2, lines: { a: 1, b: 3, c: 4 }, same: [1, 2], fresh: null }
    );
    expect(Object.fromEntries(changes)).toEqual({
      [pathKey(['amount'])]: 'changed',
      [pathKey(['lines', 'b'])]: 'changed',
      [pathKey(['lines', 'c'])]: 'added',
      [pathKey(['fresh'])]: 'added',
      [pathKey(['gone'])]: 'removed'
    });
  });

  test('a key that turns from object to value is changed, not recursed', () => {
    expect(Object.fromEntries(diffStates({ a: { b: 1 } }, { a: 1 }))).toEqual({ [pathKey(['a'])]: 'changed' });
  });

  test('jsonEqual ignores key order and compares arrays by position', () => {
    expect(jsonEqual({ a: 1, b: [1, { c: 2 }] }, { b: [1, { c: 2 }], a: 1 })).toBe(true);
    expect(jsonEqual([1, 2], [2, 1])).toBe(false);
    expect(jsonEqual({ a: null }, {})).toBe(false);
  });
});

describe('time scale', () => {
  const t0 = Date.parse('2026-01-01T12:00:00Z');

  test('maps the domain onto the range linearly', () => {
    const x = timeScale([t0, t0 + 3600_000], [100, 700]);
    expect(x(t0)).toBe(100);
    expect(x(t0 + 1800_000)).toBe(400);
    expect(x(t0 + 3600_000)).toBe(700);
  });

  test('puts a single moment mid-range', () => {
    const x = timeScale([t0, t0], [0, 100]);
    expect(x(t0)).toBe(50);
  });

  test('ticks fall on round steps inside the domain', () => {
    const x = timeScale([t0 + 60_000, t0 + 3 * 3600_000], [0, 100], 6);
    const ticks = x.ticks();
    expect(ticks.length).toBeGreaterThan(1);
    expect(ticks.length).toBeLessThanOrEqual(7);
    expect(tickStep(ticks)).toBe(30 * 60_000);
    for (const t of ticks) {
      expect(t % tickStep(ticks)).toBe(0);
      expect(t).toBeGreaterThanOrEqual(x.domain[0]);
      expect(t).toBeLessThanOrEqual(x.domain[1]);
    }
    expect(formatTick(t0 + 30 * 60_000, 30 * 60_000)).toBe('12:30');
    expect(formatTick(Date.parse('2026-01-02T00:00:00Z'), 3600_000)).toBe('00:00'); // the date goes beneath
    expect(formatTick(t0, 86_400_000)).toBe('2026-01-01');
  });

  test('an axis of times of day names the first day and every new one', () => {
    const hour = 3600_000;
    const within = [4, 6, 8, 10, 12, 14].map(h => Date.parse('2026-01-01T00:00:00Z') + h * hour);
    expect(axisDates(within, 2 * hour, within[0])).toEqual([{ at: within[0], text: '2026-01-01' }]);
    const across = [18, 24, 30, 36, 42, 48].map(h => Date.parse('2026-01-01T00:00:00Z') + h * hour);
    expect(axisDates(across, 6 * hour, across[0]).map(d => d.text)).toEqual(['2026-01-01', '2026-01-02', '2026-01-03']);
    expect(axisDates([], hour, t0)).toEqual([{ at: t0, text: '2026-01-01' }]);
    expect(axisDates(across, 86_400_000, across[0])).toEqual([]); // the ticks are dates already
  });

  test('value scale includes zero and ends on round numbers', () => {
    const y = valueScale([13, 87], [200, 0]);
    expect(y.domain).toEqual([0, 100]);
    expect(y(0)).toBe(200);
    expect(y(100)).toBe(0);
    expect(y.ticks()).toEqual([0, 20, 40, 60, 80, 100]);
  });
});

describe('formatting', () => {
  test('numbers get thousands separators', () => {
    expect(formatNumber(1234567)).toBe('1,234,567');
    expect(formatNumber(-1234.5)).toBe('-1,234.5');
    expect(formatNumber(0)).toBe('0');
    expect(formatNumber(6560000.0)).toBe('6,560,000');
    expect(formatNumber(0.1 + 0.2)).toBe('0.3');
  });

  test('bytes in binary units', () => {
    expect(formatBytes(512)).toBe('512 B');
    expect(formatBytes(122444)).toBe('119.6 KiB');
    expect(formatBytes(3 * 1024 ** 3)).toBe('3.0 GiB');
  });

  test('cells by column type', () => {
    expect(formatCell(12345, 'integer')).toBe('12,345');
    expect(formatCell(null, 'integer')).toBe('');
    expect(formatCell('2026-01-01T12:00:00Z', 'timestamp')).toBe('2026-01-01 12:00:00Z');
    expect(formatCell({ a: 1 }, 'json')).toBe('{"a":1}');
  });

  test('document times parse with microseconds, and without a zone as UTC', () => {
    expect(parseTime('2026-01-01T12:00:00Z')).toBe(Date.UTC(2026, 0, 1, 12));
    expect(parseTime('2026-01-01T12:00:00.250000Z')).toBe(Date.UTC(2026, 0, 1, 12, 0, 0, 250));
    expect(parseTime('2026-01-01T12:00:00')).toBe(Date.UTC(2026, 0, 1, 12));
    expect(parseTime('2026-01-01T13:00:00+01:00')).toBe(Date.UTC(2026, 0, 1, 12));
    expect(parseTime('2026-01-01')).toBe(Date.UTC(2026, 0, 1));
    expect(parseTime('soon')).toBeNaN();
    expect(parseTime(null)).toBeNaN();
  });

  test('problems name their file and offset', () => {
    expect(problemParts('wal/1.wal at byte 8: bad checksum')).toMatchObject({ file: 'wal/1.wal', offset: 8 });
    expect(problemParts('wal/2.wal: torn frame at byte 4096')).toMatchObject({ file: 'wal/2.wal', offset: 4096 });
    expect(problemParts('segments/s1.arrow: cannot be read (x)')).toMatchObject({ file: 'segments/s1.arrow', offset: null });
    expect(problemParts('sequences are not gapless from 1: position 3')).toMatchObject({ file: null, offset: null });
  });
});

describe('stacking marks', () => {
  test('marks closer than the gap go to new rows, and return to the first row once clear', () => {
    expect(stackRows([0, 3, 6, 20, 21], 10)).toEqual([0, 1, 2, 0, 1]);
  });

  test('marks apart by the gap or more stay on one row', () => {
    expect(stackRows([0, 10, 20, 35], 10)).toEqual([0, 0, 0, 0]);
  });

  test('a burst past the row limit spreads over the rows rather than piling on one', () => {
    const rows = stackRows(Array.from({ length: 3 * MAX_STACK_ROWS }, () => 5), 10);
    expect(Math.max(...rows)).toBe(MAX_STACK_ROWS - 1);
    const counts = Array.from({ length: MAX_STACK_ROWS }, (_, k) => rows.filter(r => r === k).length);
    expect(counts).toEqual(Array(MAX_STACK_ROWS).fill(3));
  });
});

describe('the events table in reading order', () => {
  const names = ['sequence', 'event_id', 'event_type', 'entity_id', 'version', 'timestamp',
    'recorded_at', 'payload', 'metadata', 'schema_version'];
  const table: Table = {
    columns: names.map(name => ({ name, type: 'string' })),
    rows: [names.map(n => `${n}-value`)],
    total: 1,
    truncated: false
  };

  test('payload and the state change come first, the ids last, cells follow their columns', () => {
    const shown = readingOrder(table, ['+paid']);
    const order = shown.columns.map(c => c.name);
    expect(order.slice(0, 2)).toEqual(['payload', STATE_CHANGE_COLUMN]);
    expect(order.slice(-2)).toEqual(['sequence', 'event_id']);
    expect([...order].sort()).toEqual([...names, STATE_CHANGE_COLUMN].sort());
    shown.columns.forEach((c, i) => {
      expect(shown.rows[0][i]).toBe(c.name === STATE_CHANGE_COLUMN ? '+paid' : `${c.name}-value`);
    });
  });

  test('a column it does not know stays, before the ids', () => {
    const wider: Table = { ...table, columns: [...table.columns, { name: 'partition', type: 'integer' }], rows: [[...table.rows[0], 7]] };
    const order = readingOrder(wider, [null]).columns.map(c => c.name);
    expect(order.indexOf('partition')).toBe(order.indexOf('sequence') - 1);
  });

  test('the state change names each changed key with its sign', () => {
    expect(changeSummary({ amount: 1, note: 'x', lines: { a: 1 } }, { amount: 2, lines: { a: 1, b: 2 }, paid: true }))
      .toBe('~amount +lines.b +paid −note');
    expect(changeSummary({ a: 1 }, { a: 1 })).toBe('');
  });
});
