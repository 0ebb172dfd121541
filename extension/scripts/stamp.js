#!/usr/bin/env node
/*
 * Write allsource_lab/labextension/source-hash.txt: a sha256 over the sources the
 * prebuilt extension is built from, so a Python test can tell when someone changed
 * src/ or style/ (or the dependency pins) and forgot to rebuild.
 *
 * The hash covers, in sorted order of their POSIX paths relative to extension/, every
 * file under src/ and style/ plus package.json, package-lock.json and tsconfig.json; for
 * each it takes utf-8(path) + NUL + the file's bytes + NUL. Sorting by code unit (not
 * locale) matches Python's sorted() on str, which the recomputing test uses.
 */
'use strict';

const crypto = require('crypto');
const fs = require('fs');
const path = require('path');

const root = path.resolve(__dirname, '..');
const TREES = ['src', 'style'];
const FILES = ['package.json', 'package-lock.json', 'tsconfig.json'];

function walk(relDir, out) {
  for (const entry of fs.readdirSync(path.join(root, relDir), { withFileTypes: true })) {
    const rel = `${relDir}/${entry.name}`;
    if (entry.isDirectory()) {
      walk(rel, out);
    } else if (entry.isFile()) {
      out.push(rel);
    }
  }
  return out;
}

function sourceHash() {
  const paths = [];
  for (const tree of TREES) {
    walk(tree, paths);
  }
  paths.push(...FILES);
  paths.sort((a, b) => (a < b ? -1 : a > b ? 1 : 0));
  const hash = crypto.createHash('sha256');
  const nul = Buffer.from([0]);
  for (const rel of paths) {
    hash.update(Buffer.from(rel, 'utf8'));
    hash.update(nul);
    hash.update(fs.readFileSync(path.join(root, rel)));
    hash.update(nul);
  }
  return hash.digest('hex');
}

function main() {
  const pkg = JSON.parse(fs.readFileSync(path.join(root, 'package.json'), 'utf8'));
  const outDir = path.resolve(root, pkg.jupyterlab.outputDir);
  if (!fs.existsSync(path.join(outDir, 'package.json'))) {
    throw new Error(`no built extension in ${outDir}: run the build first`);
  }
  const digest = sourceHash();
  fs.writeFileSync(path.join(outDir, 'source-hash.txt'), `${digest}\n`);
  console.log(`source-hash.txt: ${digest}`);
}

module.exports = { sourceHash };

if (require.main === module) {
  main();
}
