#!/usr/bin/env bash
# Fuzzes the hub's inbound path with cargo fuzz (libFuzzer) for a bounded
# time per target (FUZZ_SECONDS, default 30; hours by hand), starting from
# the seed corpora in fuzz/corpus/ (copied: the repository is not touched).
#
#   scripts/fuzz.sh                      every target, 30 s each
#   FUZZ_SECONDS=3600 scripts/fuzz.sh inbound
#
# Targets: `inbound` (Engine.IO and Socket.IO decoding, then the chat's
# reading and rules, without the network), `transport` (WebSocket frames
# and long-polling bodies as a client sends them) and `hub_polling` (a
# running hub, fed through long-polling requests). A crash stops the run and leaves its
# input under fuzz/artifacts/; add it to fuzz/corpus/ once fixed, so every
# later run replays it. Runs on stable Rust (no sanitizer: the project's
# Rust has no unsafe code on this path).
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET=${FUZZ_SECONDS:-30}
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(inbound transport hub_polling)
command -v cargo-fuzz >/dev/null || cargo install --quiet --locked cargo-fuzz@0.13.2
export CARGO_TARGET_DIR="${CARGO_TARGET_DIR:-$PWD/target}/fuzz"
work=$(mktemp -d)
trap 'rm -rf "$work"' EXIT
for t in "${TARGETS[@]}"; do
  echo "== fuzz $t for ${SECONDS_PER_TARGET}s"
  mkdir -p "$work/$t"
  cp fuzz/corpus/"$t"/* "$work/$t/"
  status=0
  (cd fuzz && cargo fuzz run -s none "$t" "$work/$t" -- \
    -max_total_time="$SECONDS_PER_TARGET" -max_len=4096 -print_final_stats=1) >"$work/$t.log" 2>&1 || status=$?
  grep -E '^(Done|INFO: seed corpus)|panic|ERROR|SUMMARY|crash' "$work/$t.log" || true
  if [ "$status" -ne 0 ]; then
    tail -40 "$work/$t.log"
    echo "fuzz: $t found a crash (its input is under fuzz/artifacts/$t/)"
    exit 1
  fi
done
echo "fuzz: no crash"
