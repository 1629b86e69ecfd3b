#!/usr/bin/env bash
# The C tests of libchathub (the ffi crate), as CI runs them:
#
#  1. builds libchathub (cargo, debug) and the C programs of tests/c/ with
#     -Wall -Wextra -Wpedantic -Werror, twice: with AddressSanitizer +
#     UndefinedBehaviorSanitizer, and plain for valgrind;
#  2. runs the misuse tests (no client) and the C host driven by real
#     socket.io-client sockets (tests/e2e/c-host.test.js) under the
#     sanitizers, then again under valgrind (errors and leaks fail);
#  3. builds the example with `make -C examples/c` and drives it
#     (tests/e2e/c-example.test.js);
#  4. `make install` into a scratch prefix, builds the example outside the
#     repository with pkg-config (shared and static), checks the SONAME, the
#     links and that no rpath is needed, and drives both installed programs
#     (the client bundle served from the installed share/chathub).
#
# Honours CARGO_TARGET_DIR (default target/). Needs gcc, g++, make,
# pkg-config, readelf, valgrind, node (scripts/setup.sh installs what is missing).
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
CHATHUB_C_EXAMPLE="$ROOT/examples/c/chat_server" \
  node --test --test-concurrency=1 tests/e2e/c-example.test.js

echo "== C install: make install into a scratch prefix; the example built outside the repository"
# As a C developer deploys it: pkg-config alone, shared (found through
# LD_LIBRARY_PATH only, no rpath) and static (no libchathub at run time),
# run from a folder with no node_modules above it, so the page's client
# bundle can only come from the installed share/chathub.
scratch="$(mktemp -d)"
trap 'rm -rf "$scratch"' EXIT
prefix="$scratch/prefix"
app="$scratch/app"
make --no-print-directory install PREFIX="$prefix"
mkdir -p "$app" "$prefix/bin"
cp examples/c/chat_server.c "$app/"
fail() { echo "C install: $*" >&2; exit 1; }
(
  cd "$app"
  export PKG_CONFIG_PATH="$prefix/lib/pkgconfig"
  # shellcheck disable=SC2046 # pkg-config's output is meant to be split
  "$CC" -std=c11 "${WARN[@]}" -O2 $(pkg-config --cflags chathub) chat_server.c \
    $(pkg-config --libs chathub) -o chat_shared
  # shellcheck disable=SC2046
  "$CC" -std=c11 "${WARN[@]}" -O2 $(pkg-config --cflags chathub-static) chat_server.c \
    $(pkg-config --static --libs chathub-static) -o "$prefix/bin/chat_static"
)
version=$(sed -n 's/^version = "\(.*\)"/\1/p' Cargo.toml | head -n 1)
soname=$(readelf -d "$prefix/lib/libchathub.so.$version" | sed -n 's/.*Library soname: \[\(.*\)\]/\1/p')
case "$soname" in libchathub.so.[0-9]*) ;; *) fail "no versioned SONAME (got '$soname')" ;; esac
[ "$(readlink "$prefix/lib/$soname")" = "libchathub.so.$version" ] || fail "$soname does not point to libchathub.so.$version"
[ "$(readlink "$prefix/lib/libchathub.so")" = "$soname" ] || fail "libchathub.so does not point to $soname"
readelf -d "$app/chat_shared" | grep -q "NEEDED.*\[$soname\]" || fail "chat_shared does not need $soname"
if readelf -d "$app/chat_shared" | grep -Eq 'RPATH|RUNPATH'; then fail "chat_shared has an rpath"; fi
if env -u LD_LIBRARY_PATH "$app/chat_shared" 2>/dev/null; then fail "chat_shared ran without LD_LIBRARY_PATH"; fi
if ldd "$prefix/bin/chat_static" | grep -q libchathub; then fail "chat_static links libchathub dynamically"; fi
echo "C install: SONAME $soname; chat_shared needs it (no rpath); chat_static has no libchathub"
CHATHUB_C_EXAMPLE="$app/chat_shared" CHATHUB_C_EXAMPLE_CWD="$app" LD_LIBRARY_PATH="$prefix/lib" \
  CHATHUB_C_EXAMPLE_BUNDLE="$prefix/share/chathub/socket.io-client" \
  node --test --test-concurrency=1 tests/e2e/c-example.test.js
CHATHUB_C_EXAMPLE="$prefix/bin/chat_static" CHATHUB_C_EXAMPLE_CWD="$app" \
  CHATHUB_C_EXAMPLE_BUNDLE="$prefix/share/chathub/socket.io-client" \
  node --test --test-concurrency=1 --test-name-pattern='serves the chapter chat' tests/e2e/c-example.test.js
make --no-print-directory uninstall PREFIX="$prefix"
left=$(find "$prefix" -type f -not -path "$prefix/bin/*")
[ -z "$left" ] || fail "make uninstall left: $left"
