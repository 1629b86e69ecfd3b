# chathub's top-level commands; each is a script in scripts/.
.PHONY: demo demo-cluster test lint setup bench

demo:   ## the chapter's chat at http://127.0.0.1:3000/
	@scripts/demo.sh

demo-cluster:  ## two hubs (Node :3000, Rust :3001) on one Redis
	@scripts/demo-cluster.sh

test:   ## every test (installs what is missing first)
	@scripts/test.sh

bench:  ## the benchmarks of docs/BENCHMARKS.md (BENCH_ARGS="--quick --repeat 1" for a smoke run)
	@scripts/bench.sh $(BENCH_ARGS)

lint:   ## cargo fmt --check and clippy -D warnings
	@scripts/lint.sh

setup:  ## install npm and system packages the tests need
	@scripts/setup.sh
