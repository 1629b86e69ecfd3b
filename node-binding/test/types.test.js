'use strict';
// The TypeScript types (hub.d.ts) compile under --strict with socket.io's
// typed-events pattern, and misuse is a compile error
// (test/types/socket-api.ts has @ts-expect-error lines: tsc fails if they
// compile).

const test = require('node:test');
const assert = require('node:assert/strict');
const path = require('node:path');
const fs = require('node:fs');
const { execFileSync } = require('node:child_process');

// typescript and @types/node are the workspace's (the root package.json).
const ROOT = path.join(__dirname, '..', '..');
const TSC = path.join(ROOT, 'node_modules', 'typescript', 'bin', 'tsc');

test('the types compile under --strict and refuse misuse', { skip: !fs.existsSync(TSC) && 'typescript is not installed' }, () => {
  const file = path.join(__dirname, 'types', 'socket-api.ts');
  try {
    execFileSync(process.execPath, [TSC, '--strict', '--noEmit', '--target', 'es2022', '--module', 'commonjs',
      '--types', 'node', '--typeRoots', path.join(ROOT, 'node_modules', '@types'), '--skipLibCheck', file], { encoding: 'utf8', stdio: 'pipe' });
  } catch (e) {
    assert.fail(`tsc: ${e.stdout}${e.stderr}`);
  }
});
