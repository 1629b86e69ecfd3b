#!/usr/bin/env bash
# Runs every test of chathub: the Rust crates, the C ABI (scripts/test-c.sh:
# C programs under AddressSanitizer/UBSan and valgrind, the C example), then
# the end-to-end tests (Node's test runner driving the examples with
# socket.io-client and a headless Chromium). Honours CARGO_TARGET_DIR.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== cargo test (workspace)"
cargo build --workspace --examples --quiet
cargo test --workspace

echo "== C ABI (scripts/test-c.sh)"
scripts/test-c.sh

echo "== Node addon (npm test in node-binding)"
# The generated loader and types must match the Rust sources.
git diff --exit-code -- node-binding/index.js node-binding/index.d.ts \
  || { echo "node-binding/index.js or index.d.ts is stale: run npm run build in node-binding and commit"; exit 1; }
(cd node-binding && npm test)

echo "== end-to-end tests (node --test)"
node --test --test-concurrency=1 tests/e2e/

echo "== fuzzing (bounded: FUZZ_SECONDS, default 30 s per target)"
scripts/fuzz.sh
