#!/usr/bin/env node
/*
 * Remove the TypeScript output and the built extension, so a production build starts
 * from nothing: the builder writes content-hashed file names and never deletes the old
 * ones, which would otherwise pile up in the committed labextension folder.
 */
'use strict';

const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
for (const target of ['lib', 'tsconfig.tsbuildinfo', pkg.jupyterlab.outputDir]) {
  fs.rmSync(path.resolve(root, target), { recursive: true, force: true });
}
