/**
 * One document into one DOM tree: checks the version and kind, draws the kind, and
 * adds the store line every document from a store carries.
 *
 * Free of JupyterLab imports so the tests can run it in jsdom; the widget (widget.ts)
 * supplies the HTML fallback renderer.
 */

import { renderCheckpoint, renderCompaction, renderCompatibility, renderIngest, renderListKind,
  renderProgress, renderReplay, renderSchema, renderStore, renderTableKind } from './cards';
import { h } from './dom';
import { formatNumber } from './format';
import { renderIntegrity, renderSchemaReport, renderStats } from './reports';
import { renderState } from './state';
import { renderEvents } from './timeline';
import { FORMAT_VERSION, isObject, JSONObject, Table, tableOf } from './types';
import { renderWindow } from './window';

type Renderer = (doc: JSONObject, kind: string) => HTMLElement;

function withTable(draw: (doc: JSONObject, table: Table, kind: string) => HTMLElement): Renderer {
  return (doc, kind) => {
    const table = tableOf(doc);
    if (!table) {
      throw new Error(`a ${kind} document without a table`);
    }
    return draw(doc, table, kind);
  };
}

/** Every kind of docs/mimetype.md and how it is drawn. */
export const RENDERERS: Record<string, Renderer> = {
  events: withTable(renderEvents),
  state: renderState,
  table: withTable(renderTableKind),
  window: withTable(renderWindow),
  stats: renderStats,
  integrity: renderIntegrity,
  schema_report: renderSchemaReport,
  schema: renderSchema,
  schema_list: withTable((doc, table, kind) => renderListKind(kind, doc, table)),
  compatibility: renderCompatibility,
  projections: withTable((doc, table, kind) => renderListKind(kind, doc, table)),
  pipelines: withTable((doc, table, kind) => renderListKind(kind, doc, table)),
  replay: renderReplay,
  store: renderStore,
  ingest: renderIngest,
  checkpoint: renderCheckpoint,
  compaction: renderCompaction,
  progress: renderProgress
};

/** Draws the bundle's HTML (or text) into `host` when the document cannot be drawn. */
export type Fallback = (host: HTMLElement) => Promise<void> | void;

/** The reason a value is not a document this renderer knows, or null if it is one. */
export function unsupported(doc: unknown): string | null {
  if (!isObject(doc)) {
    return 'not a JSON object';
  }
  if (doc['version'] !== FORMAT_VERSION) {
    return `format version ${JSON.stringify(doc['version'])} (this renderer reads version ${FORMAT_VERSION})`;
  }
  const kind = doc['kind'];
  if (typeof kind !== 'string' || !Object.prototype.hasOwnProperty.call(RENDERERS, kind)) {
    return `unknown kind ${JSON.stringify(kind)}`;
  }
  return null;
}

function storeLine(doc: JSONObject): HTMLElement | null {
  const store = doc['store'];
  if (!isObject(store)) {
    return null;
  }
  const path = store['path'];
  const events = store['events'];
  return h('div', { class: 'asl-store-line' },
    'store ', typeof path === 'string' ? h('code', {}, path) : h('span', {}, 'in memory'),
    typeof events === 'number' ? ` · ${formatNumber(events)} events` : '');
}

/**
 * The element for `doc`: class `asl-root` with `data-kind`. A document of another
 * version or kind, or one that fails to draw, gets the fallback instead (class
 * `asl-fallback`), so an output is never blank.
 */
export async function renderDocument(doc: unknown, fallback: Fallback): Promise<HTMLElement> {
  const reason = unsupported(doc);
  const kind = isObject(doc) && typeof doc['kind'] === 'string' ? doc['kind'] : '';
  const root = h('div', { class: 'asl-root', 'data-kind': kind });
  if (reason === null) {
    try {
      root.appendChild(RENDERERS[kind](doc as JSONObject, kind));
      const line = storeLine(doc as JSONObject);
      if (line) {
        root.appendChild(line);
      }
      return root;
    } catch (err) {
      root.textContent = '';
      return drawFallback(root, `could not draw this ${kind} document (${(err as Error).message})`, fallback);
    }
  }
  return drawFallback(root, reason, fallback);
}

async function drawFallback(root: HTMLElement, reason: string, fallback: Fallback): Promise<HTMLElement> {
  const host = h('div', { class: 'asl-fallback', title: `shown as HTML: ${reason}`, 'data-reason': reason });
  root.appendChild(host);
  await fallback(host);
  return root;
}
