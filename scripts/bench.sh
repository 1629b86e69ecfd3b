#!/usr/bin/env bash
# The benchmarks (issue 7, docs/BENCHMARKS.md): builds what they run, runs
# every server through every scenario, writes the table into
# docs/BENCHMARKS.md and the chart docs/benchmarks.svg.
#
#   scripts/bench.sh                 full sizes, 3 repetitions (about 25 minutes)
#   scripts/bench.sh --quick --repeat 1   a smoke run (a few minutes; writes bench/results/ only)
#   scripts/bench.sh --help          every option
#
# Honours CARGO_TARGET_DIR. Needs Rust, Node.js 20 + npm, Python 3; taskset
# (util-linux) to pin the server and the load generator to their own cores.
set -euo pipefail
cd "$(dirname "$0")/.."
command -v python3 >/dev/null 2>&1 || { echo "bench: python3 is required" >&2; exit 1; }
exec python3 bench/run.py "$@"
