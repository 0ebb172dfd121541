/**
 * The smaller kinds: tables (`table`, `projections`, `pipelines`, `schema_list`) and
 * key/value cards (`schema`, `compatibility`, `replay`, `store`, `ingest`,
 * `checkpoint`, `compaction`), and `progress` as a bar.
 */

import { h } from './dom';
import { formatNumber } from './format';
import { jsonTree } from './jsontree';
import { keyValues } from './reports';
import { renderTable } from './table';
import { isObject, JSONObject, JSONValue, Table } from './types';

function title(text: string, ...rest: (HTMLElement | string | null)[]): HTMLElement {
  return h('div', { class: 'asl-header' }, h('strong', {}, text), ...rest);
}

/** A card of the named members, in the given order, skipping absent ones. */
function card(heading: HTMLElement, doc: JSONObject, members: string[]): HTMLElement {
  const facts: JSONObject = {};
  for (const m of members) {
    if (m in doc) {
      facts[m] = doc[m];
    }
  }
  return h('div', { class: 'asl-card' }, heading, keyValues(facts));
}

function chip(text: string, cls = ''): HTMLElement {
  return h('span', { class: `asl-chip ${cls}`.trim() }, text);
}

export function renderTableKind(doc: JSONObject, table: Table): HTMLElement {
  const query = doc['query'];
  return h('div', { class: 'asl-table-doc' },
    typeof doc['title'] === 'string' ? title(doc['title']) : null,
    typeof query === 'string' ? h('pre', { class: 'asl-query' }, query) : null,
    renderTable(table));
}

export function renderListKind(kind: string, doc: JSONObject, table: Table): HTMLElement {
  const heading = kind === 'schema_list'
    ? title('schemas', ' default compatibility ', h('code', {}, String(doc['default_compatibility'] ?? '?')))
    : title(kind);
  return h('div', { class: `asl-${kind}` }, heading, renderTable(table));
}

export function renderSchema(doc: JSONObject): HTMLElement {
  const deleted = doc['deleted'] === true;
  const versions = Array.isArray(doc['versions']) ? doc['versions'] : [];
  return h('div', { class: 'asl-card asl-schema' },
    title(String(doc['subject'] ?? ''), ' ', chip(`version ${doc['schema_version'] ?? '?'}`),
      chip(`id ${doc['id'] ?? '?'}`), deleted ? chip('deleted', 'asl-bad') : null,
      doc['compatibility'] ? chip(String(doc['compatibility'])) : null),
    h('div', { class: 'asl-muted' }, `live versions: ${versions.length ? versions.join(', ') : 'none'}`),
    h('section', {}, h('h4', {}, 'schema'), jsonTree((doc['schema'] ?? null) as JSONValue, { openDepth: 3 })));
}

export function renderCompatibility(doc: JSONObject): HTMLElement {
  const subject = doc['subject'];
  return h('div', { class: 'asl-card asl-compatibility' },
    title('compatibility'), ' ',
    typeof subject === 'string' ? h('code', {}, subject) : h('span', { class: 'asl-muted' }, 'store default'),
    ': ', h('code', { class: 'asl-mode' }, String(doc['mode'] ?? '?')));
}

/** A progress bar (`progress` element) with "done of total unit" text. */
function bar(done: number, total: number | null, label: string, unit = ''): HTMLElement {
  const pct = total ? Math.min(100, (100 * done) / total) : null;
  return h('div', { class: 'asl-progress' },
    h('progress', { max: total ?? null, value: total ? done : null, 'aria-label': label }),
    h('span', { class: 'asl-progress-text' },
      `${label} ${formatNumber(done)}${total !== null ? ` of ${formatNumber(total)}` : ''}${unit ? ` ${unit}` : ''}` +
        `${pct !== null ? ` (${pct.toFixed(1)}%)` : ''}`));
}

export function renderProgress(doc: JSONObject): HTMLElement {
  const done = typeof doc['done'] === 'number' ? doc['done'] : 0;
  const total = typeof doc['total'] === 'number' ? doc['total'] : null;
  const label = [doc['label'], ''].find(v => typeof v === 'string') as string;
  const unit = typeof doc['unit'] === 'string' ? doc['unit'] : '';
  return bar(done, total, label, unit);
}

export function renderReplay(doc: JSONObject): HTMLElement {
  const p = isObject(doc['progress']) ? doc['progress'] : {};
  const status = String(doc['status'] ?? '?');
  const processed = typeof p['processed'] === 'number' ? p['processed'] : 0;
  const total = typeof p['total'] === 'number' ? p['total'] : null;
  const error = doc['error'];
  return h('div', { class: 'asl-card asl-replay' },
    title(`replay #${doc['id'] ?? '?'}`, ' ', h('code', {}, String(doc['projection'] ?? '')), ' ',
      chip(status, status === 'failed' ? 'asl-bad' : status === 'done' ? 'asl-good' : '')),
    bar(processed, total, 'processed'),
    keyValues(Object.fromEntries(Object.entries(p).filter(([k]) => k !== 'processed' && k !== 'total'))),
    typeof error === 'string' ? h('div', { class: 'asl-problem' }, error) : null);
}

export function renderStore(doc: JSONObject): HTMLElement {
  const path = doc['path'];
  return card(
    title('store', ' ', typeof path === 'string' ? h('code', {}, path) : chip('in memory'), ' ',
      chip(String(doc['status'] ?? '?'), doc['status'] === 'open' ? 'asl-good' : '')),
    doc, ['events', 'entities', 'event_types', 'fsync', 'read_only', 'note']);
}

export function renderIngest(doc: JSONObject): HTMLElement {
  return card(title('ingest', ' from ', h('code', {}, String(doc['source'] ?? '?'))), doc,
    ['rows', 'appended', 'duplicates', 'first_sequence', 'last_sequence']);
}

export function renderCheckpoint(doc: JSONObject): HTMLElement {
  const events = doc['events'];
  return card(title('checkpoint', events === 0 ? h('span', { class: 'asl-muted' }, ' nothing to seal') : null), doc,
    ['events', 'through_sequence']);
}

export function renderCompaction(doc: JSONObject): HTMLElement {
  const result = doc['result'];
  return h('div', { class: 'asl-card asl-compaction' }, title('compaction'),
    isObject(result) ? keyValues(result) : h('div', { class: 'asl-muted' }, 'nothing to merge'));
}
