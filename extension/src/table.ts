/**
 * A document `table` member as an HTML table: column types drive alignment and text
 * (numbers right-aligned with thousands separators, nulls dimmed, JSON cells collapsed).
 */

import { h } from './dom';
import { formatCell, formatNumber, isNumericType, jsonText } from './format';
import { JSONValue, Table } from './types';

// Rows drawn before a "show all" button: a display limit of 0 can bring tens of
// thousands of rows, and building them all up front would freeze the notebook.
export const TABLE_ROWS_FIRST = 500;
// JSON longer than this is collapsed into a <details> with a one-line summary.
const JSON_INLINE_CHARS = 60;

function cell(value: JSONValue, type: string): HTMLTableCellElement {
  const numeric = isNumericType(type);
  if (value === null || value === undefined) {
    return h('td', { class: `asl-null${numeric ? ' asl-num' : ''}` }, '—');
  }
  if (type === 'json' || (typeof value === 'object' && value !== null)) {
    const text = jsonText(value);
    if (text.length <= JSON_INLINE_CHARS) {
      return h('td', { class: 'asl-json-cell' }, h('code', {}, text));
    }
    return h(
      'td',
      { class: 'asl-json-cell' },
      h(
        'details',
        {},
        h('summary', {}, h('code', {}, `${text.slice(0, JSON_INLINE_CHARS - 1)}…`)),
        h('pre', {}, JSON.stringify(value, null, 2))
      )
    );
  }
  const cls = [numeric ? 'asl-num' : '', `asl-type-${type}`].filter(Boolean).join(' ');
  return h('td', { class: cls, title: type === 'uuid' || type === 'binary' ? String(value) : null }, formatCell(value, type));
}

function appendRows(body: HTMLElement, table: Table, from: number, to: number): void {
  const frag = document.createDocumentFragment();
  for (let i = from; i < to; i++) {
    const row = table.rows[i];
    const tr = h('tr', {});
    table.columns.forEach((c, j) => tr.appendChild(cell(row[j], c.type)));
    frag.appendChild(tr);
  }
  body.appendChild(frag);
}

/** "showing N of M" when the document's rows are a cut of the result, else "N rows". */
export function footerText(table: Table): string {
  const n = table.rows.length;
  if (table.truncated || n < table.total) {
    return `showing ${formatNumber(n)} of ${formatNumber(table.total)}`;
  }
  return `${formatNumber(n)} ${n === 1 ? 'row' : 'rows'}`;
}

/** The table element (class `asl-table`) with its footer, in a scrolling wrapper. */
export function renderTable(table: Table): HTMLElement {
  const head = h('thead', {}, h('tr', {}, ...table.columns.map(c =>
    h('th', { class: isNumericType(c.type) ? 'asl-num' : null, title: c.type }, c.name)
  )));
  const body = h('tbody', {});
  const first = Math.min(table.rows.length, TABLE_ROWS_FIRST);
  appendRows(body, table, 0, first);
  const wrap = h('div', { class: 'asl-table-wrap' }, h('table', { class: 'asl-table' }, head, body));
  const footer = h('div', { class: 'asl-footer' }, footerText(table));
  if (first < table.rows.length) {
    const more = h('button', { class: 'asl-button asl-show-all', type: 'button' },
      `show all ${formatNumber(table.rows.length)} rows`);
    more.addEventListener('click', () => {
      appendRows(body, table, first, table.rows.length);
      more.remove();
    });
    footer.append(' ', more);
  }
  if (table.columns.length === 0) {
    return h('div', { class: 'asl-table-wrap' }, h('div', { class: 'asl-empty' }, 'no columns'), footer);
  }
  return h('div', { class: 'asl-table-block' }, wrap, footer);
}
