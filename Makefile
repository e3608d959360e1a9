# neuro-divergent: one entry point for building, running and testing.
# `make run` and `make test` install what they need (see scripts/setup.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
BIN := target/release/neuro-divergent
MODEL_PATH ?= tests/fixtures/bundles
PORT ?= 8080
VENV = $(shell scripts/python-env.sh)
PY = $(VENV)/bin/python

.PHONY: help setup build static wasm run run-rust run-python loadtest migrate soak test test-rust test-contract test-reliability test-abuse test-filter test-k8s test-e2e lint deny fuzz fuzz-smoke fmt bench bench-bundles fixtures legacy-fixtures clean

help:
	@echo "make run        the whole mesh on 127.0.0.1: Python + Rust services, Envoy with the filter, Prometheus"
	@echo "make loadtest   hey scenarios (direct, through Envoy at several weights, mirroring) -> loadtest/results/"
	@echo "make migrate    the blue-green walkthrough 1% -> 100% with PromQL gates (attaches to make run)"
	@echo "make run-rust   only the Rust service on the committed fixture bundles (127.0.0.1:$(PORT))"
	@echo "make test       everything CI runs: fmt, clippy, unit + parity tests, contract tests on both services,"
	@echo "                the filter in a real Envoy, Kubernetes manifests validated offline"
	@echo "make fuzz       cargo-fuzz every input boundary for FUZZ_SECONDS each (make fuzz-smoke: 15 s each)"
	@echo "make soak       10 minutes of mixed load through the mesh with RSS sampled (SOAK_SECONDS)"
	@echo "make bench      criterion benches of the forward passes + hey against both services"
	@echo "make bench-bundles  hey /predict p50/p99 and memory per loaded bundle, every fixture bundle -> bench/results/per_bundle.md"
	@echo "make run-python the Python reference service on the same bundles"
	@echo "make fixtures   regenerate tests/fixtures with the pinned NeuralForecast"

setup:
	scripts/setup.sh

build:
	$(CARGO) build --release --locked -p neuro-divergent

# The fully static binary the distroless image ships (deploy/docker/rust.Dockerfile).
static:
	rustup target list --installed | grep -q x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
	$(CARGO) build --release --locked -p neuro-divergent --target x86_64-unknown-linux-musl
	@ls -l target/x86_64-unknown-linux-musl/release/neuro-divergent | awk '{print "static binary:", $$5, "bytes"}'

# The Proxy-Wasm filter and the minimal benchmark filter (size-optimised, < 300 KiB).
wasm:
	wasm-filter/build.sh

# API_PROFILE=tests/profiles/columns_dict/profile.toml: both services speak that
# API profile (docs/profiles.md), the filter compares answers of its shape.
run: setup build wasm
	$(PY) -m loadtest.mesh run $(if $(API_PROFILE),--api-profile $(API_PROFILE))

loadtest: setup build wasm
	$(PY) -m loadtest.loadtest

migrate: setup build wasm
	$(PY) -m loadtest.migrate

# Mixed load through the mesh for SOAK_SECONDS with the RSS of every process
# sampled (loadtest/soak.py); report in loadtest/results/soak-<time>.{md,json}.
# A 60 s version runs in make test (tests/e2e/test_e2e_soak.py).
SOAK_SECONDS ?= 600
soak: setup build wasm
	$(PY) -m loadtest.soak --seconds $(SOAK_SECONDS)

run-rust: build
	@echo "neuro-divergent on http://127.0.0.1:$(PORT) (bundles: $(MODEL_PATH)); Ctrl-C stops it"
	@echo "try: curl -s -XPOST -H 'content-type: application/json' --data @examples/predict-request.json 'http://127.0.0.1:$(PORT)/predict?model=mlp_d_standard'"
	$(BIN) serve --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(PORT)

run-python: setup
	PYTHONPATH=python $(PY) -m reference_service --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(PORT)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p wasm-filter --target wasm32-wasip1 --all-targets --locked -- -D warnings

# Licenses, bans and sources of every dependency (deny.toml): cargo-deny reads
# `cargo metadata` (missing crate sources come from crates.io, as for a build),
# nothing is compiled. Advisories need the RustSec database, which cannot be
# fetched here: .github/workflows/security.yml checks them.
deny:
	RUST_TOOLS=$$(scripts/rust-tools.sh) && "$$RUST_TOOLS/cargo-deny" --locked check --show-stats licenses bans sources

# cargo-fuzz (libFuzzer, nightly) on every boundary that takes outside bytes:
# the /predict body, the bundle loader, the filter's configuration and
# comparator, date/freq parsing. FUZZ_SECONDS per target; seeds from the
# fixtures; corpora, crashes and a results table in target/fuzz/.
FUZZ_SECONDS ?= 600
fuzz: setup
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The short version make test runs: every target, 15 s each.
fuzz-smoke: setup
	scripts/fuzz.sh 15

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace --release --locked

test-contract: build
	$(PY) -m pytest tests/contract -q

# Corrupt and hostile bundles against the release binary: each refused with a clear
# message while the previous version keeps serving (tests/reliability/).
test-reliability: build
	$(PY) -m pytest tests/reliability -q

# Abusive clients against the release binary (slow headers and bodies,
# thousands of idle connections, huge headers, endless chunked bodies, deep
# JSON, a million tiny series): status, time and RSS bounds; prints a table.
test-abuse: build
	$(PY) -m pytest tests/abuse -q -s

# The filter in a real Envoy 1.40: stand-in upstreams, then the real services.
test-filter: build wasm
	cd tests/filter && $(PY) -m pytest -q -m "not real_backends"
	tests/filter/real_backends.sh
	tests/filter/real_backends.sh --legacy

# Four FastAPI + NeuralForecast services with other API shapes, each with its
# profile (docs/profiles.md): both services answer as each, and the filter in
# a real Envoy mirrors each to Rust with 0 mismatches (tests/profiles/).
test-profiles: build wasm
	$(PY) -m pytest tests/profiles -q

# Kubernetes delivery validated offline with real tools (helm, schemas,
# promtool, envoy --mode validate) and a live Prometheus.
test-k8s: build wasm
	scripts/k8s-tools.sh
	$(PY) -m pytest tests/k8s -q

# The whole mesh on one machine: make run's entry point, the migration
# walkthrough, and the faults (kill, SIGTERM, wrong numbers, corrupt bundle).
test-e2e: build wasm
	$(PY) -m pytest tests/e2e -q -s

test: setup lint deny test-rust test-contract test-reliability test-abuse fuzz-smoke static test-filter test-profiles test-k8s test-e2e
	@echo "make test: all green"

bench: setup build
	$(PY) bench/legacy_formats.py
	$(PY) bench/intervals.py
	$(CARGO) bench --locked -p neuro-divergent --bench forward
	scripts/bench-http.sh
	$(PY) bench/per_bundle.py

# Per bundle: end-to-end /predict latency (hey) and memory per loaded bundle
# against its safetensors size, every fixture bundle (about 3-4 minutes).
bench-bundles: setup build
	$(PY) bench/per_bundle.py

# Bundles written by NeuralForecast 3.2.2, 3.1.9, 3.0.2, 2.0.1 and 1.7.7 themselves (their
# hash-pinned wheels from python/legacy-writers.lock, first on PYTHONPATH of the venv).
legacy-fixtures: setup
	$(PY) python/make_legacy_fixtures.py --out tests/fixtures/legacy

fixtures: setup
	$(PY) python/make_fixtures.py --out tests/fixtures
	$(PY) python/make_horizon_cases.py --out tests/fixtures
	$(PY) python/make_masked_cases.py --out tests/fixtures

clean:
	$(CARGO) clean
