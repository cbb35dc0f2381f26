# aicr: common tasks. `make test` is the test command CI runs.
CARGO ?= cargo

.PHONY: build release test lint fmt bench install clean

build:
	$(CARGO) build --locked

release:
	$(CARGO) build --locked --release
	@ls -l target/release/aicr | awk '{print "release binary: " $$5 " bytes"}'

test:
	$(CARGO) fmt --check
	$(CARGO) test --locked

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
