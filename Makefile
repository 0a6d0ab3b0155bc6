# rollgate — the two commands: `make demo` and `make test`. Both set themselves up.
SHELL := bash
.SHELLFLAGS := -eu -o pipefail -c
.DEFAULT_GOAL := help

PYTHON ?= python3
VENV := .venv
PY := $(VENV)/bin/python
STAMP := $(VENV)/.installed
# cargo-lambda lives in the venv (pip ships it with Zig); put it first on PATH.
export PATH := $(CURDIR)/$(VENV)/bin:$(PATH)

.PHONY: help setup test test-unit fuzz-replay test-emulator test-integration check-iac lint build build-release demo clean bench deny deny-advisories fuzz iam-mutation

help:
	@echo "make demo   - run the whole story end to end on the local AWS emulator"
	@echo "make test   - set up, build, and run unit, emulator and integration tests"
	@echo "make lint   - cargo fmt --check and clippy -D warnings"
	@echo "make check-iac - cfn-lint, sam validate (--lint and plain) and checkov on the SAM templates"
	@echo "make build-release - cargo lambda build --release --arm64 (zips in target/lambda)"
	@echo "make deny   - cargo deny: licenses, bans, sources (part of make test)"
	@echo "make deny-advisories - cargo deny: RustSec advisories (needs GitHub access)"
	@echo "make fuzz   - run every fuzz target for FUZZ_SECONDS (default 60) each"
	@echo "make iam-mutation - drop each IAM grant in turn and show a test that fails (~45 min cold)"

$(STAMP): infra/local/requirements.txt tests/requirements.txt
	$(PYTHON) -m venv $(VENV)
	$(PY) -m pip install -q --disable-pip-version-check -r infra/local/requirements.txt -r tests/requirements.txt
	touch $@

setup: $(STAMP)

build: setup
	cargo build --workspace --bins

test: setup deny build check-iac test-unit test-emulator test-integration

# Includes shared/tests/fuzz_replay.rs: every fuzz target's property on its seeds, AWS's
# published samples and events/ (`make fuzz-replay` runs only that).
test-unit:
	cargo test --workspace

fuzz-replay:
	cargo test -p rollgate --test fuzz_replay -- --nocapture

test-emulator: setup
	$(PY) -m pytest -q infra/local/tests

# Headless Chromium from Debian's packages, for the report page's browser test
# (tests/test_report_page.py): installed once, skipped when it is there (~1 min cold).
CHROMIUM := /usr/bin/chromium
SUDO := $(if $(filter 0,$(shell id -u)),,sudo)

$(CHROMIUM):
	$(SUDO) apt-get update -qq
	$(SUDO) env DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends chromium

test-integration: setup build $(CHROMIUM)
	$(PY) -m pytest -q tests

# Records a fresh run first (delete target/iam/record.jsonl to record again).
iam-mutation: setup build
	rm -f target/iam/record.jsonl
	$(PY) infra/local/iam_mutation.py

# IaC checkers live in their own venvs: SAM CLI and checkov each pin a boto3 that
# conflicts with the emulator's (.venv) and with each other.
IAC_VENV := .venv-iac
IAC_STAMP := $(IAC_VENV)/.installed

$(IAC_STAMP): infra/checks/requirements.txt infra/checks/requirements-checkov.txt
	rm -rf $(IAC_VENV)
	$(PYTHON) -m venv $(IAC_VENV)/sam
	$(PYTHON) -m venv $(IAC_VENV)/checkov
	$(IAC_VENV)/sam/bin/pip install -q --disable-pip-version-check -r infra/checks/requirements.txt & \
	  sam=$$!; \
	  $(IAC_VENV)/checkov/bin/pip install -q --disable-pip-version-check -r infra/checks/requirements-checkov.txt; \
	  wait $$sam
	touch $@

check-iac: $(IAC_STAMP)
	infra/checks/check-iac.sh $(IAC_VENV)

lint:
	cargo fmt --all -- --check
	cargo clippy --workspace --all-targets -- -D warnings

build-release: setup
	cargo lambda build --release --arm64 --output-format zip --workspace

demo: setup build
	$(PY) infra/demo.py

clean:
	cargo clean
	rm -rf $(VENV) $(IAC_VENV)

# Cargo tools, pinned, installed once into .tools/ (the stamp names the version, so a
# new pin reinstalls). Cold installs on 2 cores: cargo-deny ~6 min, cargo-fuzz ~4 min.
TOOLS := .tools
CARGO_DENY_VERSION := 0.20.2
CARGO_FUZZ_VERSION := 0.13.2
CARGO_DENY := $(TOOLS)/bin/cargo-deny
CARGO_FUZZ := $(TOOLS)/bin/cargo-fuzz

$(TOOLS)/.cargo-deny-$(CARGO_DENY_VERSION):
	cargo install --locked --quiet --root $(TOOLS) cargo-deny --version $(CARGO_DENY_VERSION)
	touch $@

$(TOOLS)/.cargo-fuzz-$(CARGO_FUZZ_VERSION):
	cargo install --locked --quiet --root $(TOOLS) cargo-fuzz --version $(CARGO_FUZZ_VERSION)
	touch $@

# Supply chain (deny.toml): licenses, banned/duplicate crates, sources. Part of `make test`.
deny: $(TOOLS)/.cargo-deny-$(CARGO_DENY_VERSION)
	$(CARGO_DENY) --locked check --hide-inclusion-graph licenses bans sources

# Advisories fetch the RustSec database from GitHub, which this machine cannot reach:
# not part of `make test`; run it where GitHub is reachable.
deny-advisories: $(TOOLS)/.cargo-deny-$(CARGO_DENY_VERSION)
	$(CARGO_DENY) --locked check --hide-inclusion-graph advisories

# Fuzz every parser of outside input (fuzz/fuzz_targets/) for FUZZ_SECONDS each, on the
# corpora in fuzz/corpus/; prints executions and crashes per target. Not part of `make test`.
FUZZ_SECONDS ?= 60
fuzz: $(TOOLS)/.cargo-fuzz-$(CARGO_FUZZ_VERSION)
	FUZZ_SECONDS=$(FUZZ_SECONDS) CARGO_FUZZ=$(CURDIR)/$(CARGO_FUZZ) fuzz/run.sh

# Benchmarks, side by side with Python/boto3 and Node/SDK v3; writes docs/benchmarks.md.
# Not part of `make test`: nothing timed can fail. Raw numbers: bench/results.json (committed).
# BENCH_ARGS passes options, e.g. BENCH_ARGS="--redrive-messages 1000 --only cold,zip".
bench: setup
	@if [ ! -d bench/node_modules ] || [ bench/package-lock.json -nt bench/node_modules ]; then \
	  (cd bench && npm ci --no-audit --no-fund --loglevel=error && touch node_modules) || \
	  echo "bench: npm ci failed, the Node comparison will be skipped"; fi
	$(PY) bench/bench.py $(BENCH_ARGS)
