#!/usr/bin/env bash
# The checks CI runs before the tests.
set -euo pipefail
cd "$(dirname "$0")/.."
cargo fmt --all --check
cargo clippy --workspace --all-targets --quiet -- -D warnings
# The committed C header must be what cbindgen generates now.
CHATHUB_BLESS=1 cargo test --quiet -p chathub-ffi --test header >/dev/null
git diff --exit-code -- include/chathub.h || {
  echo "lint: include/chathub.h differs from the committed one (it is regenerated now): commit it" >&2
  exit 1
}
