/**
 * The shape of `application/vnd.allsource.v1+json` documents (docs/mimetype.md).
 *
 * Only what the renderers read is typed; every member is treated as possibly missing
 * or null, because a document from a newer producer may add fields and an older one may
 * lack the optional ones (`states`, `previous_state`).
 */

export const MIME_TYPE = 'application/vnd.allsource.v1+json';
export const FORMAT_VERSION = 1;

export type JSONPrimitive = string | number | boolean | null;
export type JSONValue = JSONPrimitive | JSONObject | JSONArray;
export interface JSONObject {
  [key: string]: JSONValue;
}
export type JSONArray = JSONValue[];

export type ColumnType =
  | 'integer'
  | 'number'
  | 'boolean'
  | 'string'
  | 'timestamp'
  | 'date'
  | 'duration'
  | 'uuid'
  | 'json'
  | 'binary';

export interface Column {
  name: string;
  type: ColumnType | string;
}

export interface Table {
  columns: Column[];
  rows: JSONValue[][];
  total: number;
  truncated: boolean;
}

export interface Document extends JSONObject {
  version: number;
  kind: string;
}

/** True for a JSON object (not an array, not null). */
export function isObject(value: unknown): value is JSONObject {
  return typeof value === 'object' && value !== null && !Array.isArray(value);
}

/** The document's table member, or null when it is missing or malformed. */
export function tableOf(doc: JSONObject): Table | null {
  const t = doc['table'];
  if (!isObject(t) || !Array.isArray(t['columns']) || !Array.isArray(t['rows'])) {
    return null;
  }
  const rows = t['rows'] as JSONValue[][];
  return {
    columns: (t['columns'] as JSONValue[]).filter(isObject).map(c => ({
      name: String(c['name']),
      type: String(c['type'])
    })),
    rows,
    total: typeof t['total'] === 'number' ? t['total'] : rows.length,
    truncated: t['truncated'] === true
  };
}

/** Index of the column called `name`, or -1. */
export function columnIndex(table: Table, name: string): number {
  return table.columns.findIndex(c => c.name === name);
}
