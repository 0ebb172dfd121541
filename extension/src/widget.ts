/**
 * The Lumino widget JupyterLab creates for each output of our mimetype.
 */

import { renderHTML } from '@jupyterlab/rendermime';
import { IRenderMime } from '@jupyterlab/rendermime-interfaces';
import { Widget } from '@lumino/widgets';

import { h } from './dom';
import { renderDocument } from './render';
import { MIME_TYPE } from './types';

export class DocumentRenderer extends Widget implements IRenderMime.IRenderer {
  constructor(private readonly options: IRenderMime.IRendererOptions) {
    super();
    this.addClass('asl-output');
  }

  async renderModel(model: IRenderMime.IMimeModel): Promise<void> {
    const doc = model.data[MIME_TYPE];
    const root = await renderDocument(doc, host => this.fallback(model, host));
    this.node.replaceChildren(root);
  }

  /** The bundle's own HTML, through JupyterLab's sanitizer, else its text. */
  private async fallback(model: IRenderMime.IMimeModel, host: HTMLElement): Promise<void> {
    const html = model.data['text/html'];
    if (typeof html === 'string') {
      await renderHTML({
        host,
        source: html,
        trusted: model.trusted,
        sanitizer: this.options.sanitizer,
        resolver: this.options.resolver,
        linkHandler: this.options.linkHandler,
        shouldTypeset: false,
        latexTypesetter: this.options.latexTypesetter,
        translator: this.options.translator
      });
      return;
    }
    const text = model.data['text/plain'];
    host.appendChild(h('pre', {}, typeof text === 'string' ? text : JSON.stringify(model.data[MIME_TYPE], null, 2)));
  }
}
