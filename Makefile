# chathub's top-level commands; each is a script in scripts/.
.PHONY: demo demo-cluster test lint setup bench install uninstall

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

install:  ## libchathub for C: header, .so (with SONAME), .a, pkg-config files, client bundle (PREFIX=/usr/local DESTDIR=)
	@scripts/install-c.sh install

uninstall:  ## removes what `make install` put under PREFIX
	@scripts/install-c.sh uninstall

.PHONY: node-packages
node-packages:  ## the Node addon's npm platform packages (node-binding/npm/*), cross-built and checked (PLATFORMS="linux-arm64-gnu" for some)
	@scripts/node-packages.sh $(PLATFORMS)
