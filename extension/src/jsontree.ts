/**
 * A collapsible JSON tree that reads as JSON: keys and strings keep their quotes, so
 * the text of the tree is the text of the value (a reader can copy `"amount": 42.5`).
 *
 * Objects and arrays are native <details> elements: collapsing costs no script, and the
 * tree stays usable with the keyboard. Given the changes from `diffStates`, the rows of
 * added, changed and removed keys get `asl-diff-*` classes and a visible marker; removed
 * keys are drawn from the previous state, struck through.
 */

import { Change, pathKey } from './diff';
import { h } from './dom';
import { isObject, JSONValue } from './types';

export interface TreeOptions {
  /** Changes keyed by `pathKey`, as returned by `diffStates`. */
  changes?: Map<string, Change>;
  /** The previous state, to draw removed keys with their old value. */
  previous?: JSONValue;
  /** Containers deeper than this start collapsed (the root is depth 0). */
  openDepth?: number;
}

const MARKERS: Record<Change, string> = { added: '+', changed: '~', removed: '−' };
const LABELS: Record<Change, string> = { added: 'added', changed: 'changed', removed: 'removed' };

function leaf(value: JSONValue): HTMLElement {
  const type = value === null ? 'null' : typeof value;
  return h('span', { class: `asl-json-value asl-json-${type}` }, JSON.stringify(value));
}

function summaryOf(value: JSONValue[] | Record<string, JSONValue>): string {
  const n = Array.isArray(value) ? value.length : Object.keys(value).length;
  const [open, close] = Array.isArray(value) ? ['[', ']'] : ['{', '}'];
  return n === 0 ? `${open}${close}` : `${open}…${close} ${n} ${Array.isArray(value) ? 'items' : n === 1 ? 'key' : 'keys'}`;
}

function keyLabel(key: string | number | null): (HTMLElement | string)[] {
  if (key === null) {
    return [];
  }
  return typeof key === 'number'
    ? [h('span', { class: 'asl-json-index' }, String(key)), ': ']
    : [h('span', { class: 'asl-json-key' }, JSON.stringify(key)), ': '];
}

function node(
  key: string | number | null,
  value: JSONValue,
  path: string[],
  depth: number,
  opts: TreeOptions,
  change: Change | undefined
): HTMLElement {
  const marker = change
    ? h('span', { class: 'asl-diff-marker', title: LABELS[change] }, MARKERS[change])
    : null;
  const cls = change ? ` asl-diff-${change}` : '';
  if (value === null || typeof value !== 'object' || summaryOf(value).length <= 2) {
    return h(
      'div',
      { class: `asl-json-row${cls}`, 'data-path': pathKey(path) },
      marker,
      ...keyLabel(key),
      leaf(value)
    );
  }
  const details = h('details', {
    class: `asl-json-node${cls}`,
    'data-path': pathKey(path),
    open: depth < (opts.openDepth ?? 2) || hasChangeBelow(path, opts)
  });
  details.appendChild(
    h('summary', { class: 'asl-json-row' }, marker, ...keyLabel(key), h('span', { class: 'asl-json-summary' }, summaryOf(value)))
  );
  const body = h('div', { class: 'asl-json-children' });
  // A removed key below a changed subtree is not a key of `value`: take it from before.
  const removedHere = change ? [] : removedKeys(path, value, opts);
  if (Array.isArray(value)) {
    value.forEach((item, i) => body.appendChild(node(i, item, [...path, String(i)], depth + 1, opts, undefined)));
  } else {
    const keys = [...Object.keys(value), ...removedHere].sort();
    for (const k of keys) {
      const here = [...path, k];
      const c = change ? undefined : opts.changes?.get(pathKey(here));
      const v = c === 'removed' ? (valueAt(opts.previous, here) as JSONValue) : value[k];
      body.appendChild(node(k, v, here, depth + 1, opts, c));
    }
  }
  details.appendChild(body);
  return details;
}

function valueAt(root: JSONValue | undefined, path: string[]): JSONValue | undefined {
  let v: JSONValue | undefined = root;
  for (const k of path) {
    if (!isObject(v)) {
      return undefined;
    }
    v = v[k];
  }
  return v;
}

function removedKeys(path: string[], value: JSONValue, opts: TreeOptions): string[] {
  if (!opts.changes || !isObject(value)) {
    return [];
  }
  const before = valueAt(opts.previous, path);
  if (!isObject(before)) {
    return [];
  }
  return Object.keys(before).filter(k => !(k in value) && opts.changes?.get(pathKey([...path, k])) === 'removed');
}

function hasChangeBelow(path: string[], opts: TreeOptions): boolean {
  if (!opts.changes || opts.changes.size === 0) {
    return false;
  }
  const prefix = pathKey(path).slice(0, -1); // `["a"` of `["a"]`, or `[` at the root
  for (const k of opts.changes.keys()) {
    if (k.startsWith(prefix) && k.length > prefix.length + 1) {
      return true;
    }
  }
  return false;
}

/** The tree of `value` in an element with class `asl-json`. */
export function jsonTree(value: JSONValue, opts: TreeOptions = {}): HTMLElement {
  const root = h('div', { class: 'asl-json' });
  if (isObject(value) && (Object.keys(value).length > 0 || (opts.changes?.size ?? 0) > 0)) {
    // The root object's braces add nothing: list its keys directly.
    const tree = node(null, value, [], 0, { openDepth: 2, ...opts }, undefined);
    const children = tree.querySelector(':scope > .asl-json-children');
    root.appendChild(children ?? tree);
  } else {
    root.appendChild(node(null, value, [], 0, opts, undefined));
  }
  return root;
}
