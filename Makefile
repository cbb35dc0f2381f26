# aicr: common tasks. `make test` runs every test that needs nothing beside
# the checkout; `make test-all` (what CI runs) adds the ignored ones, which
# need the test cluster, helm, shellcheck, PyYAML or ../shared; `make
# test-gpu` runs the ones that need an NVIDIA GPU, on a machine with one.
CARGO ?= cargo

# Ignored tests that need an NVIDIA GPU, its driver and nvidia-smi: CI has
# none, so test-all skips them.
GPU_TESTS := nvml_and_nvidia_smi_agree
# The ignored test that needs helmfile (built from its Go module by
# .ci/helmfile.sh, far too long a build for CI): test-all skips it;
# `make test-helmfile` builds helmfile once and runs it (with the test cluster).
HELMFILE_TESTS := helmfile_lints_templates_syncs_and_destroys_the_bundle
# More tests to skip in test-all, by name (.ci/run sets it when it must fall
# back to the old test cluster: the tests that need a current one).
SKIP_TESTS ?=

.PHONY: build release dist docs test test-all test-gpu test-helmfile lint fmt bench bench-k8s install clean

build:
	$(CARGO) build --locked

# The release profile: no cross-crate LTO, so a rebuild of the crate takes
# about half of dist's CPU; what `cargo install --path .` builds too.
release:
	$(CARGO) build --locked --release
	@ls -l target/release/aicr | awk '{print "release binary: " $$5 " bytes"}'

# The shipped binary: the dist profile (fat LTO, one codegen unit), as the
# image (.ci/image.sh, Containerfile) builds it. README "Build profiles".
dist:
	$(CARGO) build --locked --profile dist --bin aicr
	@ls -l target/dist/aicr | awk '{print "dist binary: " $$5 " bytes"}'

# Regenerates docs/cli/*.md and docs/man/*.1 from the clap definitions;
# `make test` fails while they differ from what the code generates.
docs:
	UPDATE_DOCS=1 $(CARGO) test --locked --test docs docs_match_the_code

test:
	$(CARGO) fmt --check
	$(CARGO) test --locked

test-all:
	$(CARGO) fmt --check
	$(CARGO) test --locked --no-fail-fast -- --include-ignored $(addprefix --skip ,$(GPU_TESTS) $(HELMFILE_TESTS) $(SKIP_TESTS))

test-gpu:
	$(CARGO) test --locked -- --ignored $(GPU_TESTS)

test-helmfile:
	bash .ci/helmfile.sh
	$(CARGO) test --locked --test cli_deploy_k8s -- --ignored $(HELMFILE_TESTS)

lint:
	$(CARGO) clippy --locked --all-targets -- -D warnings

fmt:
	$(CARGO) fmt

# Every benchmark, one table (bench/all.py): bench.py's cases, and
# k8s_scale.py's when the test cluster's binaries exist (else its row says
# it was skipped). They measure the shipped build (dist).
bench: dist
	python3 bench/all.py $(BENCH_ARGS)

# The Kubernetes collector at scale (issue #12): starts a private etcd +
# kube-apiserver (never the shared test cluster; needs .ci/kube/install.sh's
# binaries), fills it with 500 nodes and 5,000-20,000 pods, and prints wall
# time and peak RSS beside Go aicr's. BENCH_K8S_ARGS: e.g. --go-binary PATH.
bench-k8s: dist
	python3 bench/k8s_scale.py --binary target/dist/aicr $(BENCH_K8S_ARGS)

install:
	$(CARGO) install --locked --path .

clean:
	$(CARGO) clean
