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

.PHONY: help setup build static wasm run run-rust run-python loadtest migrate test test-rust test-contract test-filter test-k8s test-e2e lint fmt bench fixtures clean

help:
	@echo "make run        the whole mesh on 127.0.0.1: Python + Rust services, Envoy with the filter, Prometheus"
	@echo "make loadtest   hey scenarios (direct, through Envoy at several weights, mirroring) -> loadtest/results/"
	@echo "make migrate    the blue-green walkthrough 1% -> 100% with PromQL gates (attaches to make run)"
	@echo "make run-rust   only the Rust service on the committed fixture bundles (127.0.0.1:$(PORT))"
	@echo "make test       everything CI runs: fmt, clippy, unit + parity tests, contract tests on both services,"
	@echo "                the filter in a real Envoy, Kubernetes manifests validated offline"
	@echo "make bench      criterion benches of the forward passes + hey against both services"
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

run: setup build wasm
	$(PY) -m loadtest.mesh run

loadtest: setup build wasm
	$(PY) -m loadtest.loadtest

migrate: setup build wasm
	$(PY) -m loadtest.migrate

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

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace --release --locked

test-contract: build
	$(PY) -m pytest tests/contract -q

# The filter in a real Envoy 1.40: stand-in upstreams, then the real services.
test-filter: build wasm
	cd tests/filter && $(PY) -m pytest -q -m "not real_backends"
	tests/filter/real_backends.sh

# Kubernetes delivery validated offline with real tools (helm, schemas,
# promtool, envoy --mode validate) and a live Prometheus.
test-k8s: build wasm
	scripts/k8s-tools.sh
	$(PY) -m pytest tests/k8s -q

# The whole mesh on one machine: make run's entry point, the migration
# walkthrough, and the faults (kill, SIGTERM, wrong numbers, corrupt bundle).
test-e2e: build wasm
	$(PY) -m pytest tests/e2e -q -s

test: setup lint test-rust test-contract static test-filter test-k8s test-e2e
	@echo "make test: all green"

bench: setup build
	$(CARGO) bench --locked -p neuro-divergent --bench forward
	scripts/bench-http.sh

fixtures: setup
	$(PY) python/make_fixtures.py --out tests/fixtures

clean:
	$(CARGO) clean
