# aicr: common tasks. `make test` runs every test that needs nothing beside
# the checkout; `make test-all` (what CI runs) adds the ignored ones, which
# need the test cluster, helm, shellcheck, PyYAML or ../shared.
CARGO ?= cargo

.PHONY: build release test test-all lint fmt bench install clean

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --locked --release
	@ls -l target/release/aicr | awk '{print "release binary: " $$5 " bytes"}'

test:
	$(CARGO) fmt --check
	$(CARGO) test --locked

test-all:
	$(CARGO) fmt --check
	$(CARGO) test --locked -- --include-ignored

lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

bench: release
	python3 bench/bench.py

install:
	$(CARGO) install --locked --path .

clean:
	$(CARGO) clean
