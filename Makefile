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

.PHONY: help setup build run run-python test test-rust test-contract lint fmt bench fixtures clean

help:
	@echo "make run        the Rust service on the committed fixture bundles (127.0.0.1:$(PORT))"
	@echo "make test       everything CI runs: fmt, clippy, unit + parity tests, contract tests on both services"
	@echo "make bench      criterion benches of the forward passes + hey against both services"
	@echo "make run-python the Python reference service on the same bundles"
	@echo "make fixtures   regenerate tests/fixtures with the pinned NeuralForecast"

setup:
	scripts/setup.sh

build:
	$(CARGO) build --release --locked -p neuro-divergent

run: build
	@echo "neuro-divergent on http://127.0.0.1:$(PORT) (bundles: $(MODEL_PATH)); Ctrl-C stops it"
	@echo "try: curl -s -XPOST -H 'content-type: application/json' --data @examples/predict-request.json 'http://127.0.0.1:$(PORT)/predict?model=mlp_d_standard'"
	$(BIN) serve --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(PORT)

run-python: setup
	PYTHONPATH=python $(PY) -m reference_service --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(PORT)

lint:
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings

fmt:
	$(CARGO) fmt --all

test-rust:
	$(CARGO) test --workspace --release --locked

test-contract: build
	$(PY) -m pytest tests/contract -q

test: setup lint test-rust test-contract
	@echo "make test: all green"

bench: setup build
	$(CARGO) bench --locked -p neuro-divergent --bench forward
	scripts/bench-http.sh

fixtures: setup
	$(PY) python/make_fixtures.py --out tests/fixtures

clean:
	$(CARGO) clean
