# chathub's top-level commands; each is a script in scripts/.
.PHONY: demo test lint setup

demo:   ## the chapter's chat at http://127.0.0.1:3000/
	@scripts/demo.sh

test:   ## every test (installs what is missing first)
	@scripts/test.sh

lint:   ## cargo fmt --check and clippy -D warnings
	@scripts/lint.sh

setup:  ## install npm and system packages the tests need
	@scripts/setup.sh
