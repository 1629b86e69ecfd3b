#!/usr/bin/env bash
# Redis's CPU per PUBLISH by number of subscribers, pipelined: what a line
# costs Redis once the system calls are shared by many (docs/SCALING.md).
# A redis-server of its own on a free port of 127.0.0.1; 100,000 PUBLISHes
# of 200 bytes, 32 per pipeline, from redis-benchmark; subscribers are
# redis-cli processes. Needs redis-server, redis-cli, redis-benchmark.
set -euo pipefail
for t in redis-server redis-cli redis-benchmark python3; do
  command -v "$t" >/dev/null || { echo "$t is needed (scripts/setup.sh installs Redis)" >&2; exit 1; }
done
port=$(python3 -c 'import socket; s = socket.socket(); s.bind(("127.0.0.1", 0)); print(s.getsockname()[1])')
redis-server --port "$port" --bind 127.0.0.1 --save '' --appendonly no --loglevel warning >/dev/null &
server=$!
subs=()
cleanup() { kill "${subs[@]}" "$server" 2>/dev/null || true; }
trap cleanup EXIT
cli() { redis-cli -p "$port" "$@"; }
for _ in $(seq 100); do cli ping >/dev/null 2>&1 && break; sleep 0.1; done
cli ping >/dev/null
msg=$(python3 -c 'print("x" * 200)')
cpu() { cli info cpu | awk -F: '/^used_cpu_(sys|user):/ { s += $2 } END { print s }'; }
for n in 1 3 10 30; do
  subs=()
  for _ in $(seq "$n"); do cli subscribe 'bench#all' >/dev/null & subs+=($!); done
  # Every subscriber is in before the publishes start (bounded wait).
  for _ in $(seq 200); do
    [ "$(cli pubsub numsub 'bench#all' | tail -1)" = "$n" ] && break
    sleep 0.05
  done
  cli config resetstat >/dev/null
  before=$(cpu)
  redis-benchmark -p "$port" -n 100000 -P 32 -c 2 -q PUBLISH 'bench#all' "$msg" >/dev/null
  after=$(cpu)
  inside=$(cli info commandstats | sed -n 's/^cmdstat_publish:.*usec_per_call=\([0-9.]*\).*/\1/p')
  python3 -c "print(f'subscribers {$n}: Redis CPU per PUBLISH {($after - $before) * 1e6 / 100000:.2f} us, inside the command {$inside} us')"
  kill "${subs[@]}" 2>/dev/null || true
  wait "${subs[@]}" 2>/dev/null || true
done
