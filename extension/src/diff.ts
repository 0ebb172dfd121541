/**
 * Which keys of a state changed since the previous state.
 *
 * Objects are compared key by key, recursively; anything else (arrays included, which
 * merge patch replaces whole) is compared as a value. Only the keys that differ are
 * reported, so a changed nested key marks that key and not its parents.
 */

import { isObject, JSONValue } from './types';

export type Change = 'added' | 'changed' | 'removed';

/** A key's path from the root, encoded as a JSON array text (`["lines","a"]`). */
export function pathKey(path: readonly string[]): string {
  return JSON.stringify(path);
}

/** True when two JSON values are equal (object key order ignored). */
export function jsonEqual(a: JSONValue | undefined, b: JSONValue | undefined): boolean {
  if (a === b) {
    return true;
  }
  if (Array.isArray(a) && Array.isArray(b)) {
    return a.length === b.length && a.every((x, i) => jsonEqual(x, b[i]));
  }
  if (isObject(a) && isObject(b)) {
    const ka = Object.keys(a);
    return ka.length === Object.keys(b).length && ka.every(k => k in b && jsonEqual(a[k], b[k]));
  }
  return false;
}

/** The changes from `before` to `after`, keyed by `pathKey` of each differing key. */
export function diffStates(before: JSONValue, after: JSONValue): Map<string, Change> {
  const changes = new Map<string, Change>();
  const walk = (a: JSONValue, b: JSONValue, path: string[]): void => {
    if (!isObject(a) || !isObject(b)) {
      return;
    }
    for (const key of Object.keys(b)) {
      const here = [...path, key];
      if (!(key in a)) {
        changes.set(pathKey(here), 'added');
      } else if (isObject(a[key]) && isObject(b[key])) {
        walk(a[key], b[key], here);
      } else if (!jsonEqual(a[key], b[key])) {
        changes.set(pathKey(here), 'changed');
      }
    }
    for (const key of Object.keys(a)) {
      if (!(key in b)) {
        changes.set(pathKey([...path, key]), 'removed');
      }
    }
  };
  walk(before, after, []);
  return changes;
}

const CHANGE_SIGN: Record<Change, string> = { added: '+', changed: '~', removed: '−' };

/**
 * The changes from `before` to `after` in one line, for a table cell: each changed key
 * as a sign and its dotted path (`+paid ~lines.b −gone`), in the order `diffStates`
 * finds them; "" when nothing changed.
 */
export function changeSummary(before: JSONValue, after: JSONValue): string {
  return [...diffStates(before, after)]
    .map(([path, change]) => `${CHANGE_SIGN[change]}${(JSON.parse(path) as string[]).join('.')}`)
    .join(' ');
}
