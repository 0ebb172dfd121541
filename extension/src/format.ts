/**
 * Turning document values into display text: numbers with thousands separators,
 * times and byte counts readable, cells formatted by their column type.
 */

import { JSONValue } from './types';

// A fixed locale, not the browser's: the same document reads the same everywhere, and
// the tests can assert exact text.
const INTEGER = new Intl.NumberFormat('en-US', { maximumFractionDigits: 0 });
const DECIMAL = new Intl.NumberFormat('en-US', { maximumFractionDigits: 6 });

/** A number with thousands separators: 1234567 → "1,234,567", 1234.5 → "1,234.5". */
export function formatNumber(value: number): string {
  if (!Number.isFinite(value)) {
    return String(value);
  }
  if (Number.isInteger(value)) {
    return INTEGER.format(value);
  }
  // Very small magnitudes would round to 0 at six fraction digits.
  if (Math.abs(value) < 1e-4) {
    return value.toExponential(3);
  }
  return DECIMAL.format(value);
}

/** Bytes in binary units: 122444 → "119.6 KiB". */
export function formatBytes(bytes: number): string {
  const units = ['B', 'KiB', 'MiB', 'GiB', 'TiB'];
  let value = bytes;
  let unit = 0;
  while (Math.abs(value) >= 1024 && unit < units.length - 1) {
    value /= 1024;
    unit += 1;
  }
  return unit === 0 ? `${value} B` : `${value.toFixed(1)} ${units[unit]}`;
}

/** Compact JSON of any value (`{"a":1}`), for inline cells and titles. */
export function jsonText(value: JSONValue | undefined): string {
  return value === undefined ? '' : JSON.stringify(value);
}

/**
 * Milliseconds since the epoch of an ISO-8601 time from a document, or NaN.
 *
 * Documents carry microseconds (`…:00.250000Z`) which not every engine parses, so the
 * fraction is cut to milliseconds; a time without a zone (a naive DataFrame column) is
 * read as UTC so that the axis and the text agree.
 */
export function parseTime(text: unknown): number {
  if (typeof text !== 'string') {
    return NaN;
  }
  const m = /^(\d{4}-\d{2}-\d{2})(?:[T ](\d{2}:\d{2}(?::\d{2})?)(\.\d+)?)?(Z|[+-]\d{2}:?\d{2})?$/.exec(
    text.trim()
  );
  if (!m) {
    return NaN;
  }
  const [, date, time, fraction, zone] = m;
  const ms = fraction ? fraction.slice(0, 4).padEnd(4, '0') : '';
  return Date.parse(`${date}T${time ?? '00:00:00'}${ms}${zone ?? 'Z'}`);
}

/** A time for people: "2026-01-01 12:00:00Z" (the fraction kept when present). */
export function formatTime(text: string): string {
  return text.replace('T', ' ');
}

/** Display text of one table cell of the given column type ("" for null). */
export function formatCell(value: JSONValue, type: string): string {
  if (value === null || value === undefined) {
    return '';
  }
  switch (type) {
    case 'integer':
    case 'number':
      return typeof value === 'number' ? formatNumber(value) : String(value);
    case 'timestamp':
      return typeof value === 'string' ? formatTime(value) : jsonText(value);
    case 'json':
      return jsonText(value);
    default:
      return typeof value === 'string' ? value : jsonText(value);
  }
}

/** True for the column types shown right-aligned. */
export function isNumericType(type: string): boolean {
  return type === 'integer' || type === 'number';
}
