#!/usr/bin/env node
'use strict';
// Puts the Rust sources the Node addon is built from into node-binding/rust/
// (a workspace of two members: core and node-binding), so that the npm
// package can build itself where no prebuilt binary fits
// (node-binding/build-from-source.js). Run by `npm pack` / `npm publish` in
// node-binding (prepack); `--clean` removes them again (postpack). Copies
// only: fast, no build.

const fs = require('node:fs');
const path = require('node:path');

const ROOT = path.resolve(__dirname, '..');
const OUT = path.join(ROOT, 'node-binding', 'rust');

fs.rmSync(OUT, { recursive: true, force: true });
if (process.argv.includes('--clean')) process.exit(0);

function copy(from, to = from) {
  fs.cpSync(path.join(ROOT, from), path.join(OUT, to), {
    recursive: true,
    filter: (src) => !/(^|[/\\])(target|node_modules)$/.test(src) && !src.endsWith('.node'),
  });
}

// The workspace manifest, with only the two members the addon needs; its
// package fields, lints and profiles (`node` among them) as they are.
const workspace = fs.readFileSync(path.join(ROOT, 'Cargo.toml'), 'utf8');
const members = /^members = \[[^\]]*\]$/m;
const exclude = /^exclude = \[[^\]]*\]\n/m;
if (!members.test(workspace)) throw new Error('Cargo.toml: no one-line `members = [...]` to rewrite');
if (!/^\[profile\.node\]$/m.test(workspace)) throw new Error('Cargo.toml: no [profile.node]');
fs.mkdirSync(OUT, { recursive: true });
fs.writeFileSync(
  path.join(OUT, 'Cargo.toml'),
  workspace.replace(members, 'members = ["core", "node-binding"]').replace(exclude, ''),
);
copy('Cargo.lock');
copy('core/Cargo.toml');
copy('core/src');
copy('core/assets');
copy('node-binding/Cargo.toml');
copy('node-binding/build.rs');
copy('node-binding/src');
