/**
 * Reports: `stats` (a readable summary of store.stats()), `integrity` (an OK badge or
 * the problems, each with its file and offset picked out) and `schema_report`.
 */

import { h } from './dom';
import { formatBytes, formatNumber } from './format';
import { isObject, JSONObject, JSONValue } from './types';

/** A scalar for people: thousands separators, byte counts in units, nulls as "—". */
export function formatValue(key: string, value: JSONValue): string {
  if (value === null) {
    return '—';
  }
  if (typeof value === 'number') {
    const text = formatNumber(value);
    return key.endsWith('_bytes') && Math.abs(value) >= 1024 ? `${text} (${formatBytes(value)})` : text;
  }
  if (typeof value === 'boolean') {
    return value ? 'yes' : 'no';
  }
  return typeof value === 'string' ? value : JSON.stringify(value);
}

/** Key/value rows of an object; nested objects indented, lists one item a line. */
export function keyValues(obj: JSONObject, depth = 0): HTMLElement {
  const dl = h('dl', { class: `asl-kv${depth ? ' asl-kv-nested' : ''}` });
  for (const [key, value] of Object.entries(obj)) {
    const label = key.replace(/_/g, ' ');
    let dd: HTMLElement;
    if (isObject(value)) {
      dd = Object.keys(value).length ? h('dd', {}, keyValues(value, depth + 1)) : h('dd', { class: 'asl-muted' }, 'none');
    } else if (Array.isArray(value)) {
      dd = value.length
        ? h('dd', {}, h('ul', { class: 'asl-list' }, ...value.map(v => h('li', {}, isObject(v) ? keyValues(v, depth + 1) : formatValue(key, v)))))
        : h('dd', { class: 'asl-muted' }, 'none');
    } else {
      dd = h('dd', { class: typeof value === 'number' ? 'asl-num' : value === null ? 'asl-muted' : null }, formatValue(key, value));
    }
    dl.append(h('dt', { title: key }, label), dd);
  }
  return dl;
}

export interface ProblemParts {
  file: string | null;
  offset: number | null;
  text: string;
}

/**
 * The file and byte offset a problem names, when it names them: the store writes
 * `"<file> at byte <n>: <why>"`, `"<file>: <why> at byte <n>"` or `"<file>: <why>"`.
 */
export function problemParts(problem: string): ProblemParts {
  const offset = /\bat byte (\d+)/.exec(problem);
  const file = /^([^\s:]+\.[A-Za-z0-9]+|[^\s:]+\/[^\s:]+)(?=:| at byte)/.exec(problem);
  return { file: file ? file[1] : null, offset: offset ? Number(offset[1]) : null, text: problem };
}

/**
 * The problem's own text, with the file and the "at byte N" in it picked out in place:
 * the reader (and a search for the message) sees the sentence the store wrote.
 */
function problemItem(problem: JSONValue): HTMLElement {
  const text = typeof problem === 'string' ? problem : JSON.stringify(problem);
  const { file } = problemParts(text);
  const li = h('li', { class: 'asl-problem' });
  const marks: [number, number, string][] = [];
  if (file) {
    marks.push([0, file.length, 'asl-problem-file']);
  }
  const offset = /\bat byte \d+/.exec(text);
  if (offset) {
    marks.push([offset.index, offset.index + offset[0].length, 'asl-problem-offset']);
  }
  let at = 0;
  for (const [from, to, cls] of marks.sort((a, b) => a[0] - b[0])) {
    li.append(text.slice(at, from), h(cls === 'asl-problem-file' ? 'code' : 'span', { class: cls }, text.slice(from, to)));
    at = to;
  }
  li.append(text.slice(at));
  return li;
}

function badge(ok: boolean, label: string): HTMLElement {
  return h('span', { class: `asl-badge ${ok ? 'asl-ok' : 'asl-bad'}` }, label);
}

function problemList(problems: JSONValue): HTMLElement | null {
  const list = Array.isArray(problems) ? problems : [];
  return list.length ? h('ol', { class: 'asl-problems' }, ...list.map(problemItem)) : null;
}

export function renderStats(doc: JSONObject): HTMLElement {
  const stats = isObject(doc['stats']) ? doc['stats'] : {};
  const problems = stats['recovery_problems'];
  return h('div', { class: 'asl-report asl-stats' },
    h('div', { class: 'asl-header' }, h('strong', {}, 'store stats'),
      Array.isArray(problems) && problems.length ? badge(false, `${problems.length} recovery problems`) : null),
    keyValues(stats));
}

export function renderIntegrity(doc: JSONObject): HTMLElement {
  const ok = doc['ok'] === true;
  const files = typeof doc['files_checked'] === 'number' ? doc['files_checked'] : 0;
  const problems = Array.isArray(doc['problems']) ? doc['problems'] : [];
  return h('div', { class: 'asl-report asl-integrity', 'data-ok': String(ok) },
    h('div', { class: 'asl-header' },
      badge(ok, ok ? 'OK' : `${problems.length} ${problems.length === 1 ? 'problem' : 'problems'}`),
      ` integrity: ${formatNumber(files)} ${files === 1 ? 'file' : 'files'} checked`),
    problemList(problems));
}

export function renderSchemaReport(doc: JSONObject): HTMLElement {
  const compatible = doc['compatible'] === true;
  return h('div', { class: 'asl-report asl-schema-report', 'data-ok': String(compatible) },
    h('div', { class: 'asl-header' },
      badge(compatible, compatible ? 'compatible' : 'not compatible'),
      ' schema for ', h('code', {}, String(doc['subject'] ?? '(no subject)')),
      ' under ', h('code', {}, String(doc['mode'] ?? '?'))),
    problemList(doc['problems'] ?? []));
}
