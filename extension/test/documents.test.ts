/**
 * Every fixture document renders, natively when the contract (allsource_lab/display/schema.json)
 * says it is a version-1 document of a known kind, with the HTML fallback otherwise.
 */

import * as fs from 'fs';
import * as path from 'path';

import { formatNumber } from '../src/format';
import { readingOrder } from '../src/events';
import { RENDERERS } from '../src/render';
import { tableOf } from '../src/types';
import { all, copy, Fixture, fixtures, render } from './fixtures';

const SCHEMA = path.resolve(__dirname, '..', '..', 'allsource_lab', 'display', 'schema.json');
const contract = JSON.parse(fs.readFileSync(SCHEMA, 'utf8'));
const SCHEMA_KINDS: string[] = contract.properties.kind.enum;
const SCHEMA_VERSION: number = contract.properties.version.const;

function text(el: Element): string {
  return (el.textContent ?? '').replace(/\s+/g, ' ');
}

/** What each kind must show, as text found in the output. */
function keyFacts(f: Fixture): string[] {
  const d = f.doc;
  const str = (v: unknown) => (typeof v === 'number' ? formatNumber(v) : String(v));
  switch (d.kind) {
    case 'state':
      return [String(d.entity_id), ...Object.keys(d.state as object).map(k => JSON.stringify(k))];
    case 'stats':
      return Object.keys(d.stats as object).map(k => k.replace(/_/g, ' '));
    case 'integrity':
    case 'schema_report':
      return [...(d.problems as string[])];
    case 'schema':
      return [String(d.subject), `version ${d.schema_version}`];
    case 'compatibility':
      return [String(d.mode)];
    case 'replay':
      return [String(d.projection), String(d.status), ...(d.error ? [String(d.error)] : [])];
    case 'store':
    case 'ingest':
    case 'checkpoint':
      return Object.entries(d)
        .filter(([k, v]) => !['version', 'kind', 'store', 'path', 'read_only'].includes(k) && v !== null)
        .map(([, v]) => str(v));
    case 'compaction':
      return d.result ? Object.values(d.result as object).map(str) : ['nothing to merge'];
    case 'progress':
      return [str(d.done), str(d.total), String(d.label), String(d.unit)];
    default:
      return [];
  }
}

describe('every fixture', () => {
  const all_ = fixtures();

  test('covers every kind of the contract', () => {
    const seen = new Set(all_.map(f => f.doc.kind));
    expect(SCHEMA_KINDS.filter(k => !seen.has(k))).toEqual([]);
    expect(Object.keys(RENDERERS).sort()).toEqual([...SCHEMA_KINDS].sort());
  });

  test.each(all_.map(f => [f.name, f] as const))('%s renders', async (_, f) => {
    const native = f.doc.version === SCHEMA_VERSION && SCHEMA_KINDS.includes(f.doc.kind);
    const { root, fallbacks } = await render(f.doc, f.bundle);
    expect(root.classList.contains('asl-root')).toBe(true);
    expect(root.getAttribute('data-kind')).toBe(f.doc.kind);
    if (!native) {
      expect(fallbacks).toHaveLength(1);
      const expected = document.createElement('div');
      expected.innerHTML = String(f.bundle['text/html']);
      expect(root.querySelector('.asl-fallback')?.innerHTML).toBe(expected.innerHTML);
      return;
    }
    expect(root.querySelector('.asl-fallback')).toBeNull();
    expect(fallbacks).toHaveLength(0);
    const shown = text(root);
    for (const fact of keyFacts(f)) {
      expect(shown).toContain(fact);
    }
    const table = tableOf(f.doc);
    if (table) {
      root.querySelector<HTMLElement>('.asl-toggle-table')?.click(); // events: the table is a view
      const heads = all(root, '.asl-table th').map(text);
      // events: the table view puts payload and state change first, ids last
      const shownTable = f.doc.kind === 'events' ? readingOrder(table, table.rows.map(() => null)) : table;
      expect(heads).toEqual(shownTable.columns.map(c => c.name));
      expect(all(root, '.asl-table tbody tr')).toHaveLength(Math.min(table.rows.length, 500));
      if (table.truncated) {
        expect(shown).toContain(`showing ${formatNumber(table.rows.length)} of ${formatNumber(table.total)}`);
      }
    }
    if (f.doc.store) {
      expect(text(root.querySelector('.asl-store-line') as Element)).toContain(
        `${formatNumber((f.doc.store as { events: number }).events)} events`
      );
    }
  });
});

describe('fallback', () => {
  const [events] = fixtures().filter(f => f.name === 'events');

  test.each([
    ['a later format version', { version: 2 }],
    ['an unknown kind', { kind: 'hologram' }],
    ['no version', { version: undefined }]
  ])('%s shows the bundle HTML', async (_, change) => {
    const doc = { ...copy(events.doc), ...change };
    const { root, fallbacks } = await render(doc, events.bundle);
    expect(fallbacks).toHaveLength(1);
    expect(root.querySelector('.asl-timeline')).toBeNull();
    expect(root.querySelector('.asl-fallback table')).not.toBeNull();
  });

  test('a document that cannot be drawn falls back instead of throwing', async () => {
    const doc = copy(events.doc);
    delete doc.table;
    const { root, fallbacks } = await render(doc, events.bundle);
    expect(fallbacks).toHaveLength(1);
    expect(root.querySelector('.asl-fallback')?.getAttribute('data-reason')).toMatch(/without a table/);
  });
});

describe('table cells', () => {
  test('numbers right-aligned with separators, nulls dimmed, long JSON collapsed', async () => {
    const doc = {
      version: 1, kind: 'table', query: null, title: 'mixed',
      table: {
        columns: [{ name: 'n', type: 'integer' }, { name: 'x', type: 'number' }, { name: 'j', type: 'json' }],
        rows: [[1234567, null, { long: 'x'.repeat(100) }], [2, 0.5, { a: 1 }]],
        total: 40, truncated: true
      }
    };
    const { root } = await render(doc);
    const cells = all(root, '.asl-table tbody td');
    expect(text(cells[0])).toBe('1,234,567');
    expect(cells[0].classList.contains('asl-num')).toBe(true);
    expect(cells[1].classList.contains('asl-null')).toBe(true);
    expect(cells[2].querySelector('details')).not.toBeNull();
    expect(cells[5].querySelector('details')).toBeNull();
    expect(text(root)).toContain('showing 2 of 40');
    expect(text(root)).toContain('mixed');
  });
});
