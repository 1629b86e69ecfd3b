#!/usr/bin/env bash
# The C tests of libchathub (the ffi crate), as CI runs them:
#
#  1. builds libchathub (cargo, debug) and the C programs of tests/c/ with
#     -Wall -Wextra -Wpedantic -Werror, twice: with AddressSanitizer +
#     UndefinedBehaviorSanitizer, and plain for valgrind;
#  2. runs the misuse tests (no client) and the C host driven by real
#     socket.io-client sockets (tests/e2e/c-host.test.js) under the
#     sanitizers, then again under valgrind (errors and leaks fail);
#  3. builds the example with `make -C examples/c` (and through chathub.pc)
#     and drives it (tests/e2e/c-example.test.js).
#
# Honours CARGO_TARGET_DIR (default target/). Needs gcc, g++, make,
# pkg-config, valgrind, node (scripts/setup.sh installs what is missing).
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT="$PWD"
TARGET_DIR="$(realpath -m "${CARGO_TARGET_DIR:-target}")"
export CARGO_TARGET_DIR="$TARGET_DIR"
OUT="$TARGET_DIR/c-tests"
LIB="$TARGET_DIR/debug/libchathub.a"
mkdir -p "$OUT"

CC="${CC:-gcc}"
CXX="${CXX:-g++}"
WARN=(-Wall -Wextra -Wpedantic -Werror)
SYSLIBS=(-lpthread -ldl -lm -lrt -lutil)
SAN=(-fsanitize=address,undefined -fno-omit-frame-pointer -fno-sanitize-recover=all)

echo "== C tests: build libchathub and the test programs"
cargo build --quiet -p chathub-ffi
for prog in misuse chat_host; do
  "$CC" -std=c11 "${WARN[@]}" -g -O1 "${SAN[@]}" -Iinclude -Itests/c "tests/c/$prog.c" "$LIB" "${SYSLIBS[@]}" -o "$OUT/$prog-asan"
  "$CC" -std=c11 "${WARN[@]}" -g -O1 -Iinclude -Itests/c "tests/c/$prog.c" "$LIB" "${SYSLIBS[@]}" -o "$OUT/$prog"
done
# The protocol host (namespaces of its own only): tests/e2e/conformance.test.js
# runs the protocol through it, as through the Rust and Node ones.
"$CC" -std=c11 "${WARN[@]}" -g -O1 -Iinclude tests/c/protocol_host.c "$LIB" "${SYSLIBS[@]}" -o "$OUT/protocol_host"
"$CXX" -std=c++11 "${WARN[@]}" -g -Iinclude tests/c/header_cxx.cpp "$LIB" "${SYSLIBS[@]}" -o "$OUT/header_cxx"
"$OUT/header_cxx"

export ASAN_OPTIONS="detect_leaks=1:halt_on_error=1:abort_on_error=0:detect_stack_use_after_return=1"
export UBSAN_OPTIONS="print_stacktrace=1:halt_on_error=1"
echo "== C tests: AddressSanitizer + UBSan"
"$OUT/misuse-asan"
CHATHUB_C_HOST="$OUT/chat_host-asan" \
  node --test --test-concurrency=1 tests/e2e/c-host.test.js

echo "== C tests: valgrind"
# (Relative paths only: the e2e test splits CHATHUB_C_WRAPPER on spaces and
# runs it from the repository root.)
VALGRIND=(valgrind -q --error-exitcode=1 --leak-check=full
  --show-leak-kinds=definite,indirect,possible --errors-for-leak-kinds=definite,indirect,possible
  --suppressions=tests/c/valgrind.supp)
"${VALGRIND[@]}" "$OUT/misuse"
CHATHUB_C_HOST="$OUT/chat_host" CHATHUB_C_WRAPPER="${VALGRIND[*]}" CHATHUB_E2E_WAIT_MS=60000 \
  node --test --test-concurrency=1 tests/e2e/c-host.test.js

echo "== C example: make -C examples/c (as the README says: a release build)"
make --no-print-directory -C examples/c
make --no-print-directory -C examples/c check-pkg-config
CHATHUB_C_EXAMPLE="$ROOT/examples/c/chat_server" \
  node --test --test-concurrency=1 tests/e2e/c-example.test.js
