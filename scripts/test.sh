#!/usr/bin/env bash
# Runs every test of chathub: the Rust crates, then the end-to-end tests
# (Node's test runner driving the examples with socket.io-client and a
# headless Chromium).
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh

echo "== cargo test (workspace)"
cargo build --workspace --examples --quiet
cargo test --workspace

echo "== end-to-end tests (node --test)"
node --test --test-concurrency=1 tests/e2e/
