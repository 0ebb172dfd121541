/**
 * The fixture documents the Python side writes (`python -m allsource_lab.notebook.fixtures
 * extension/fixtures`): one mimebundle per file, `<kind>.json` or `<kind>-<variant>.json`.
 * ASL_FIXTURES points elsewhere if set.
 */

import * as fs from 'fs';
import * as path from 'path';

import { renderDocument } from '../src/render';
import { MIME_TYPE } from '../src/types';

export const FIXTURES = process.env.ASL_FIXTURES ?? path.resolve(__dirname, '..', 'fixtures');

export interface Fixture {
  name: string;
  bundle: Record<string, unknown>;
  // eslint-disable-next-line @typescript-eslint/no-explicit-any
  doc: Record<string, any>;
}

export function fixtures(): Fixture[] {
  if (!fs.existsSync(FIXTURES)) {
    throw new Error(
      `no fixtures in ${FIXTURES}: run \`python -m allsource_lab.notebook.fixtures extension/fixtures\` first`
    );
  }
  return fs
    .readdirSync(FIXTURES)
    .filter(f => f.endsWith('.json'))
    .sort()
    .map(f => {
      const bundle = JSON.parse(fs.readFileSync(path.join(FIXTURES, f), 'utf8'));
      return { name: f.replace(/\.json$/, ''), bundle, doc: bundle[MIME_TYPE] as Record<string, any> };
    });
}

/** The fixtures of one kind; fails the test when there is none. */
export function ofKind(kind: string, where: (doc: Fixture["doc"]) => boolean = () => true): Fixture[] {
  const found = fixtures().filter(f => f.doc?.kind === kind && where(f.doc));
  if (!found.length) {
    throw new Error(`no ${kind} fixture matching the test's needs in ${FIXTURES}`);
  }
  return found;
}

/** A deep copy, so a test can change a document without touching the others. */
export function copy<T>(value: T): T {
  return JSON.parse(JSON.stringify(value));
}

export interface Rendered {
  root: HTMLElement;
  fallbacks: HTMLElement[];
}

/** Render into the jsdom body, recording fallback calls (which draw the bundle's HTML). */
export async function render(doc: unknown, bundle: Record<string, unknown> = {}): Promise<Rendered> {
  const fallbacks: HTMLElement[] = [];
  const root = await renderDocument(doc, host => {
    fallbacks.push(host);
    const html = bundle['text/html'];
    // Test stand-in for JupyterLab's sanitizing renderHTML; fixture HTML is our own.
    host.innerHTML = typeof html === 'string' ? html : '';
  });
  document.body.replaceChildren(root);
  return { root, fallbacks };
}

export function click(el: Element): void {
  el.dispatchEvent(new MouseEvent('click', { bubbles: true }));
}

export function all(root: ParentNode, selector: string): Element[] {
  return Array.from(root.querySelectorAll(selector));
}
