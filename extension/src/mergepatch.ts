/**
 * JSON Merge Patch (RFC 7386) and the entity-state fold built on it.
 *
 * The Python store folds an entity's payloads with merge patch in version order
 * (`allsource_lab._query.state.merge_patch`); the timeline does the same when an events
 * document carries no `states`, so a pinned event can still show its entity's state.
 */

import { isObject, JSONObject, JSONValue } from './types';

/** A deep copy of a JSON value. */
export function cloneJSON<T extends JSONValue>(value: T): T {
  return (value === null || typeof value !== 'object' ? value : JSON.parse(JSON.stringify(value))) as T;
}

/**
 * The result of applying `patch` to `target` (RFC 7386 §2); neither is modified.
 *
 * A non-object patch replaces the target; in an object patch a null removes the key and
 * an object recurses.
 */
export function mergePatch(target: JSONValue | undefined, patch: JSONValue): JSONValue {
  if (!isObject(patch)) {
    return cloneJSON(patch);
  }
  const result: JSONObject = isObject(target) ? { ...target } : {};
  for (const [key, value] of Object.entries(patch)) {
    if (value === null) {
      delete result[key];
    } else {
      result[key] = mergePatch(result[key], value);
    }
  }
  return result;
}

/** One event as the fold needs it. */
export interface VersionedPayload {
  version: number;
  payload: JSONValue;
}

/**
 * The entity state after each of `events` (one entity's shown events), or null where
 * it cannot be known from them.
 *
 * The state after version v is the fold of versions 1..v, so it is known only when all
 * of 1..v are among `events`; a page that starts at version 5 knows no state at all.
 * The answer is keyed by version.
 */
export function foldStates(events: VersionedPayload[]): Map<number, JSONObject | null> {
  const byVersion = new Map<number, JSONValue>();
  for (const e of events) {
    byVersion.set(e.version, e.payload);
  }
  const states = new Map<number, JSONObject | null>();
  let state: JSONObject = {};
  let next = 1; // the version that continues an unbroken 1..v run
  for (const v of [...byVersion.keys()].sort((a, b) => a - b)) {
    if (v === next) {
      const folded = mergePatch(state, byVersion.get(v) as JSONValue);
      state = isObject(folded) ? folded : {};
      next += 1;
      states.set(v, state);
    } else {
      next = NaN; // a gap: no later version's state is known either
      states.set(v, null);
    }
  }
  return states;
}
