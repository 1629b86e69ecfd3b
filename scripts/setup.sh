#!/usr/bin/env bash
# Installs what chathub's demo and tests need and the machine lacks.
# Idempotent: run it as often as you like.
#
#   scripts/setup.sh          npm packages + system packages (tests)
#   scripts/setup.sh --npm    npm packages and the Node addon only (the demo)
#
# System packages come from Debian/Ubuntu's apt (as root, or through sudo):
# chromium (browser tests), redis-server (scale-out tests), openssl (test
# certificates for TLS), valgrind and pkg-config (C tests; gcc, g++ and make come with the machine). npm packages come from package-lock.json (`npm ci`).
set -euo pipefail
cd "$(dirname "$0")/.."

need() {
  command -v "$1" >/dev/null 2>&1 || { echo "setup: '$1' is required but not installed: $2" >&2; exit 1; }
}
need cargo "install Rust from https://rustup.rs"
need node "install Node.js 20 or later"
need npm "install npm (it comes with Node.js)"

# npm packages of the workspace: socket.io-client (its bundle is what the
# hub serves at /socket.io/socket.io.js), playwright-core (browser tests).
if [ ! -d node_modules ] || [ package-lock.json -nt node_modules/.package-lock.json ]; then
  echo "setup: npm ci"
  npm ci --no-audit --no-fund --loglevel=error
fi

# The Node addon (node-binding/): its npm packages (@napi-rs/cli, which
# builds locally and downloads nothing else), then the build itself when the
# .node file is missing or older than the Rust sources.
if [ ! -d node-binding/node_modules ] || [ node-binding/package-lock.json -nt node-binding/node_modules/.package-lock.json ]; then
  echo "setup: npm ci (node-binding)"
  (cd node-binding && npm ci --ignore-scripts --no-audit --no-fund --loglevel=error)
fi
# The benchmarks' reference server (socket.io 4.8; bench/run.py and
# tests/e2e/bench-reference.test.js run it).
if [ ! -d bench/reference/node_modules ] || [ bench/reference/package-lock.json -nt bench/reference/node_modules/.package-lock.json ]; then
  echo "setup: npm ci (bench/reference)"
  (cd bench/reference && npm ci --no-audit --no-fund --loglevel=error)
fi
addon=$(ls node-binding/chathub.*.node 2>/dev/null | head -n1 || true)
if [ -z "$addon" ] || [ -n "$(find core/src core/assets node-binding/src node-binding/Cargo.toml Cargo.lock -newer "$addon" -print -quit)" ]; then
  echo "setup: building the Node addon (release)"
  (cd node-binding && npm run --silent build)
fi

[ "${1:-}" = "--npm" ] && exit 0

missing=()
command -v chromium >/dev/null 2>&1 || missing+=(chromium)
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v valgrind >/dev/null 2>&1 || missing+=(valgrind)
command -v pkg-config >/dev/null 2>&1 || missing+=(pkg-config)
command -v openssl >/dev/null 2>&1 || missing+=(openssl)
if [ ${#missing[@]} -gt 0 ]; then
  need apt-get "install these yourself: ${missing[*]}"
  SUDO=""
  if [ "$(id -u)" -ne 0 ]; then need sudo "run as root to install ${missing[*]}"; SUDO=sudo; fi
  echo "setup: apt-get install ${missing[*]}"
  $SUDO apt-get update -qq
  DEBIAN_FRONTEND=noninteractive $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
fi
echo "setup: ready"
