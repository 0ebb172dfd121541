/**
 * The rows of an `events` document as typed records, and each row's entity state.
 *
 * Kept apart from the drawing (timeline.ts) so the state rules can be tested alone:
 * a row's state is the document's `states` entry when there is one, else the merge-patch
 * fold of the entity's shown payloads when versions 1..v are all shown, else unknown.
 */

import { parseTime } from './format';
import { foldStates } from './mergepatch';
import { columnIndex, isObject, JSONObject, JSONValue, Table } from './types';

export interface EventRow {
  /** Position in `table.rows` (and in `states`). */
  index: number;
  sequence: number | null;
  eventId: string | null;
  type: string;
  entity: string;
  version: number | null;
  /** Event time in epoch ms (NaN when the row has none). */
  time: number;
  timestamp: string | null;
  recordedAt: string | null;
  payload: JSONValue;
  metadata: JSONValue;
  schemaVersion: number | null;
}

export type StateSource = 'document' | 'folded';

export interface RowState {
  state: JSONObject | null;
  source: StateSource | null;
}

function num(v: JSONValue | undefined): number | null {
  return typeof v === 'number' ? v : null;
}

function str(v: JSONValue | undefined): string | null {
  return v === null || v === undefined ? null : String(v);
}

/** The table's rows as `EventRow`s, by column name (the order may grow in version 1). */
export function eventRows(table: Table): EventRow[] {
  const col = (name: string) => columnIndex(table, name);
  const [iSeq, iId, iType, iEntity, iVer, iTs, iRec, iPay, iMeta, iSchema] = [
    'sequence', 'event_id', 'event_type', 'entity_id', 'version', 'timestamp',
    'recorded_at', 'payload', 'metadata', 'schema_version'
  ].map(col);
  const at = (row: JSONValue[], i: number): JSONValue | undefined => (i < 0 ? undefined : row[i]);
  return table.rows.map((row, index) => {
    const timestamp = str(at(row, iTs));
    const recordedAt = str(at(row, iRec));
    let time = parseTime(timestamp);
    if (Number.isNaN(time)) {
      time = parseTime(recordedAt);
    }
    return {
      index,
      sequence: num(at(row, iSeq)),
      eventId: str(at(row, iId)),
      type: str(at(row, iType)) ?? '(no type)',
      entity: str(at(row, iEntity)) ?? '(no entity)',
      version: num(at(row, iVer)),
      time,
      timestamp,
      recordedAt,
      payload: at(row, iPay) ?? null,
      metadata: at(row, iMeta) ?? null,
      schemaVersion: num(at(row, iSchema))
    };
  });
}

/**
 * Each row's entity state after its event, aligned with `rows`.
 *
 * `states` is the document's optional member; an entry that is missing or null is
 * folded from the shown payloads when that is possible.
 */
export function rowStates(rows: EventRow[], states: JSONValue | undefined): RowState[] {
  const given = Array.isArray(states) && states.length === rows.length ? states : null;
  const out: RowState[] = rows.map(r => {
    const s = given ? given[r.index] : null;
    return isObject(s) ? { state: s, source: 'document' } : { state: null, source: null };
  });
  if (out.every(s => s.state !== null)) {
    return out;
  }
  const byEntity = new Map<string, EventRow[]>();
  for (const r of rows) {
    if (r.version !== null) {
      const list = byEntity.get(r.entity);
      if (list) {
        list.push(r);
      } else {
        byEntity.set(r.entity, [r]);
      }
    }
  }
  for (const [, list] of byEntity) {
    if (list.every(r => out[r.index].state !== null)) {
      continue;
    }
    const folded = foldStates(list.map(r => ({ version: r.version as number, payload: r.payload })));
    for (const r of list) {
      const s = folded.get(r.version as number);
      if (out[r.index].state === null && s) {
        out[r.index] = { state: s, source: 'folded' };
      }
    }
  }
  return out;
}

/**
 * The state before each row's event: the state of the same entity's previous version
 * when that row is shown and its state known, `{}` for version 1, else null.
 */
export function previousStates(rows: EventRow[], states: RowState[]): (JSONObject | null)[] {
  const key = (entity: string, version: number) => `${version}\u0000${entity}`;
  const byVersion = new Map<string, JSONObject | null>();
  for (const r of rows) {
    if (r.version !== null) {
      byVersion.set(key(r.entity, r.version), states[r.index].state);
    }
  }
  return rows.map(r => {
    if (r.version === null) {
      return null;
    }
    if (r.version === 1) {
      return {};
    }
    return byVersion.get(key(r.entity, r.version - 1)) ?? null;
  });
}

/** The derived column of `readingOrder`: which keys each event changed in its entity's state. */
export const STATE_CHANGE_COLUMN = 'state change';

// What a reader looks for first: what happened (payload, state change), to what and when;
// ids last, since a uuid is wide and says little (it pushed the payload off-screen).
const READING_ORDER = [
  'payload', STATE_CHANGE_COLUMN, 'event_type', 'entity_id', 'version', 'timestamp',
  'recorded_at', 'metadata', 'schema_version', 'sequence', 'event_id'
];

/**
 * The events table with its columns in reading order (payload and the state change
 * first, ids last) and a `state change` column (`changes[i]`, null when unknown).
 * Columns this renderer does not know keep their order, before the ids.
 */
export function readingOrder(table: Table, changes: (string | null)[]): Table {
  const columns = [...table.columns, { name: STATE_CHANGE_COLUMN, type: 'string' }];
  const known = (name: string) => READING_ORDER.indexOf(name);
  const ids = known('sequence');
  const rank = (name: string, i: number) => (known(name) < 0 ? ids - 0.5 + i / 1e6 : known(name));
  const order = columns.map((c, i) => i).sort((a, b) => rank(columns[a].name, a) - rank(columns[b].name, b));
  return {
    columns: order.map(i => columns[i]),
    rows: table.rows.map((row, r) => order.map(i => (i < table.columns.length ? row[i] : changes[r] ?? null))),
    total: table.total,
    truncated: table.truncated
  };
}
