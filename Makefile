# neuro-divergent: one entry point for building, running and testing.
# `make run` and `make test` install what they need (see scripts/setup.sh).

SHELL := /bin/bash
.SHELLFLAGS := -euo pipefail -c
.DEFAULT_GOAL := help

CARGO ?= cargo
BIN := target/release/neuro-divergent
MODEL_PATH ?= tests/fixtures/bundles
RUST_PORT ?= 8080
PYTHON_PORT ?= 8000
VENV = $(shell scripts/python-env.sh)
PY = $(VENV)/bin/python

.PHONY: help setup build static wasm run run-rust run-python loadtest migrate soak test test-rust test-python test-contract test-reliability test-abuse test-filter test-profiles test-docs test-k8s test-e2e lint deny fuzz fuzz-smoke fmt bench bench-bundles fixtures legacy-fixtures clean

# `make help` prints every target with the text after its "##"; `make lint`
# fails when a .PHONY target has none (scripts/make-help.sh).
help: ## this list
	@scripts/make-help.sh Makefile

setup: ## install what run and test need (Rust components, the locked Python venv, hey, prometheus)
	scripts/setup.sh

build: ## the Rust service, release build (target/release/neuro-divergent)
	$(CARGO) build --release --locked -p neuro-divergent

# The fully static binary the distroless image ships (deploy/docker/rust.Dockerfile).
static: ## the fully static (musl) binary the distroless image ships
	rustup target list --installed | grep -q x86_64-unknown-linux-musl || rustup target add x86_64-unknown-linux-musl
	$(CARGO) build --release --locked -p neuro-divergent --target x86_64-unknown-linux-musl
	@ls -l target/x86_64-unknown-linux-musl/release/neuro-divergent | awk '{print "static binary:", $$5, "bytes"}'

# The Proxy-Wasm filter and the minimal benchmark filter (size-optimised, < 300 KiB).
wasm: ## the Proxy-Wasm filter and the minimal benchmark filter (wasm-filter/build.sh)
	wasm-filter/build.sh

# API_PROFILE=tests/profiles/columns_dict/profile.toml: both services speak that
# API profile (docs/profiles.md), the filter compares answers of its shape.
run: setup build wasm ## the whole mesh on 127.0.0.1: Python + Rust services, Envoy with the filter, Prometheus
	$(PY) -m loadtest.mesh run $(if $(API_PROFILE),--api-profile $(API_PROFILE))

loadtest: setup build wasm ## hey scenarios on the running mesh (or its own) -> loadtest/results/ (generated)
	$(PY) -m loadtest.loadtest

migrate: setup build wasm ## the progressive migration 0% -> 100% Rust with mirroring and PromQL gates (on make run's mesh)
	$(PY) -m loadtest.migrate

# Mixed load through the mesh for SOAK_SECONDS with the RSS of every process
# sampled (loadtest/soak.py); report in loadtest/results/soak-<time>.{md,json}.
# A 60 s version runs in make test (tests/e2e/test_e2e_soak.py).
SOAK_SECONDS ?= 600
soak: setup build wasm ## SOAK_SECONDS (600) of mixed load through the mesh with RSS sampled
	$(PY) -m loadtest.soak --seconds $(SOAK_SECONDS)

run-rust: build ## only the Rust service on the fixture bundles (127.0.0.1:8080, RUST_PORT=)
	@echo "neuro-divergent on http://127.0.0.1:$(RUST_PORT) (bundles: $(MODEL_PATH)); Ctrl-C stops it"
	@echo "try: curl -s -XPOST -H 'content-type: application/json' --data @examples/predict-request.json 'http://127.0.0.1:$(RUST_PORT)/predict?model=mlp_d_standard'"
	$(BIN) serve --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(RUST_PORT)

run-python: setup ## only the Python reference service on the same bundles (127.0.0.1:8000, PYTHON_PORT=)
	@echo "the Python reference service on http://127.0.0.1:$(PYTHON_PORT) (bundles: $(MODEL_PATH)); Ctrl-C stops it"
	PYTHONPATH=python $(PY) -m reference_service --model-path $(MODEL_PATH) --host 127.0.0.1 --port $(PYTHON_PORT)

lint: ## cargo fmt --check, clippy -D warnings (host and wasm32), the library's docs, the crates' import floors, shellcheck, ruff, mypy, every target documented
	scripts/make-help.sh --check Makefile
	$(PY) scripts/check-layers.py
	shellcheck .ci/run $$(git ls-files '*.sh' 2>/dev/null || find . -name '*.sh' -not -path './target/*' -not -path '*/node_modules/*')
	$(VENV)/bin/ruff check --config python/pyproject.toml .
	$(VENV)/bin/mypy --config-file python/pyproject.toml python/reference_service loadtest tests/python
	$(CARGO) fmt --all -- --check
	$(CARGO) clippy --workspace --all-targets --locked -- -D warnings
	$(CARGO) clippy -p wasm-filter --target wasm32-wasip1 --all-targets --locked -- -D warnings
	RUSTDOCFLAGS="-D warnings" $(CARGO) doc -p nd-forecast --no-deps --locked

# Licenses, bans and sources of every dependency (deny.toml): cargo-deny reads
# `cargo metadata` (missing crate sources come from crates.io, as for a build),
# nothing is compiled. Advisories need the RustSec database, which make test
# does not fetch (it runs offline from crates.io's index): .github/workflows/security.yml checks them.
deny: ## cargo-deny: licenses, bans and sources of every dependency
	RUST_TOOLS=$$(scripts/rust-tools.sh) && "$$RUST_TOOLS/cargo-deny" --locked check --show-stats licenses bans sources

# cargo-fuzz (libFuzzer, nightly) on every boundary that takes outside bytes:
# the /predict body, the bundle loader, the filter's configuration and
# comparator, date/freq parsing. FUZZ_SECONDS per target; seeds from the
# fixtures; corpora, crashes and a results table in target/fuzz/.
FUZZ_SECONDS ?= 600
fuzz: setup ## cargo-fuzz every input boundary for FUZZ_SECONDS (600) each
	scripts/fuzz.sh $(FUZZ_SECONDS)

# The short version make test runs: every target, 15 s each.
fuzz-smoke: setup ## every fuzz target for 15 s (part of make test)
	scripts/fuzz.sh 15

fmt: ## cargo fmt
	$(CARGO) fmt --all

test-rust: ## unit, parity and integration tests of the Rust workspace
	$(CARGO) test --workspace --release --locked

# The Python reference service in process (FastAPI's TestClient, no port):
# the request checks, settings, /openapi.json, metrics, logs, warnings, and
# the wheel `pip install ./python` builds (tests/python/).
test-python: setup ## the Python reference service in process: request checks, settings, OpenAPI, metrics, logs, its wheel
	$(PY) -m pytest tests/python -q

test-contract: build ## the HTTP contract on both services, golden fixtures, NeuralForecast differential
	$(PY) -m pytest tests/contract -q

# Corrupt and hostile bundles against the release binary: each refused with a clear
# message while the previous version keeps serving (tests/reliability/).
test-reliability: build ## corrupt and hostile bundles refused while the previous version keeps serving
	$(PY) -m pytest tests/reliability -q

# Abusive clients against the release binary (slow headers and bodies,
# thousands of idle connections, huge headers, endless chunked bodies, deep
# JSON, a million tiny series): status, time and RSS bounds; prints a table.
test-abuse: build ## abusive clients (slow, huge, deep, many) against the release binary
	$(PY) -m pytest tests/abuse -q -s

# The filter in a real Envoy 1.40: stand-in upstreams, then the real services.
test-filter: build wasm ## the filter in a real Envoy: stand-in upstreams, then both real services
	cd tests/filter && $(PY) -m pytest -q -m "not real_backends"
	tests/filter/real_backends.sh
	tests/filter/real_backends.sh --legacy

# Four FastAPI + NeuralForecast services with other API shapes, each with its
# profile (docs/profiles.md): both services answer as each, and the filter in
# a real Envoy mirrors each to Rust with 0 mismatches (tests/profiles/).
test-profiles: build wasm ## API profiles: four other service shapes on both services and through Envoy
	$(PY) -m pytest tests/profiles -q

# Every path the docs name exists (or is marked generated), no internal names.
test-docs: ## the docs: every path they name exists or is marked generated, links and anchors resolve
	$(PY) -m pytest tests/docs -q

# Kubernetes delivery validated offline with real tools (helm, schemas,
# promtool, envoy --mode validate) and a live Prometheus.
test-k8s: build wasm ## the chart and manifests validated offline with real tools, a live Prometheus
	scripts/k8s-tools.sh
	$(PY) -m pytest tests/k8s -q

# The whole mesh on one machine: make run's entry point, the migration
# walkthrough, and the faults (kill, SIGTERM, wrong numbers, corrupt bundle).
test-e2e: build wasm ## make run, make migrate and the faults on the whole local mesh
	$(PY) -m pytest tests/e2e -q -s

test: setup lint deny test-docs test-python test-rust test-contract test-reliability test-abuse fuzz-smoke static test-filter test-profiles test-k8s test-e2e ## everything CI runs (.ci/run)
	@echo "make test: all green"

bench: setup build ## criterion benches, hey against both services, per-bundle figures (BENCHMARKS.md)
	$(PY) bench/legacy_formats.py
	$(PY) bench/intervals.py
	$(CARGO) bench --locked -p nd-forecast --bench forward
	scripts/bench-http.sh
	$(PY) bench/per_bundle.py

# Per bundle: end-to-end /predict latency (hey) and memory per loaded bundle
# against its safetensors size, every fixture bundle (about 3-4 minutes).
bench-bundles: setup build ## per bundle: /predict p50/p99 and memory -> bench/results/per_bundle.md (generated)
	$(PY) bench/per_bundle.py

# Bundles written by NeuralForecast 3.2.2, 3.1.9, 3.0.2, 2.0.1 and 1.7.7 themselves (their
# hash-pinned wheels from python/legacy-writers.lock, first on PYTHONPATH of the venv).
legacy-fixtures: setup ## regenerate the bundles written by NeuralForecast 1.7.7 to 3.2.2
	$(PY) python/make_legacy_fixtures.py --out tests/fixtures/legacy

fixtures: setup ## regenerate tests/fixtures with the pinned NeuralForecast
	$(PY) python/make_fixtures.py --out tests/fixtures
	$(PY) python/make_horizon_cases.py --out tests/fixtures
	$(PY) python/make_masked_cases.py --out tests/fixtures

clean: ## cargo clean
	$(CARGO) clean
