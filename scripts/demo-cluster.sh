#!/usr/bin/env bash
# Two hubs, one Redis: the Node example on PORT_A (3000) and the Rust
# example on PORT_B (3001), both on a redis-server this script starts on
# REDIS_PORT (6380). Open http://127.0.0.1:3000/ and http://127.0.0.1:3001/,
# type "/j room1" in both tabs, and chat across the two servers.
# Ctrl-C stops all three.
set -euo pipefail
cd "$(dirname "$0")/.."
scripts/setup.sh --npm
command -v redis-server >/dev/null || { echo "redis-server is needed: scripts/setup.sh installs it" >&2; exit 1; }
cargo build --quiet -p chathub --example chat-server

PORT_A=${PORT_A:-3000}
PORT_B=${PORT_B:-3001}
REDIS_PORT=${REDIS_PORT:-6380}
export REDIS_URL="redis://127.0.0.1:${REDIS_PORT}"
target_dir=${CARGO_TARGET_DIR:-target}

pids=()
cleanup() { kill "${pids[@]}" 2>/dev/null || true; wait 2>/dev/null || true; }
trap cleanup EXIT INT TERM

redis-server --port "$REDIS_PORT" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning &
pids+=($!)
# Wait for Redis to answer (bounded).
for _ in $(seq 50); do
  if (exec 3<>"/dev/tcp/127.0.0.1/${REDIS_PORT}") 2>/dev/null; then break; fi
  sleep 0.1
done

PORT=$PORT_A node examples/node/chat-server.js &
pids+=($!)
PORT=$PORT_B "$target_dir/debug/examples/chat-server" &
pids+=($!)
echo "two hubs on one Redis: http://127.0.0.1:${PORT_A}/ (Node) and http://127.0.0.1:${PORT_B}/ (Rust); Ctrl-C stops them"
wait -n "${pids[@]}"
