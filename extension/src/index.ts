/**
 * allsource-lab-extension: renders `application/vnd.allsource.v1+json` outputs
 * (docs/mimetype.md) natively in JupyterLab.
 */

import { IRenderMime } from '@jupyterlab/rendermime-interfaces';

import { MIME_TYPE } from './types';
import { DocumentRenderer } from './widget';

export { MIME_TYPE };

export const rendererFactory: IRenderMime.IRendererFactory = {
  safe: true,
  mimeTypes: [MIME_TYPE],
  // Lower ranks win; text/html is 50, so the document is chosen over its HTML fallback.
  defaultRank: 0,
  createRenderer: options => new DocumentRenderer(options)
};

const extension: IRenderMime.IExtension = {
  id: 'allsource-lab-extension:renderer',
  description: 'Renders AllSource Lab results (events timeline, state diff, windows, reports).',
  rendererFactory,
  rank: 0,
  dataType: 'json'
};

export default extension;
