"""Fixtures for the filter's Envoy integration tests.

The .wasm files must be built first (see wasm-filter/README.md):
    wasm-filter/build.sh
Set ND_FILTER_WASM / ND_MINIMAL_WASM to test other builds, ENVOY_BIN for another Envoy.

Backends: by default two controllable stand-ins (upstream.py). For the test
against the real services set ND_FILTER_PYTHON_URL and ND_FILTER_RUST_URL
(e.g. http://127.0.0.1:8000 and http://127.0.0.1:8080): see test_real_backends.py.
"""

import os

import harness
import pytest


def pytest_configure(config):
    config.addinivalue_line("markers", "real_backends: needs the real Python and Rust services")


@pytest.fixture(scope="session")
def wasm():
    if not harness.WASM.exists():
        pytest.fail(f"{harness.WASM} is missing: run wasm-filter/build.sh first")
    return harness.WASM


@pytest.fixture(scope="session")
def workdir(tmp_path_factory):
    return tmp_path_factory.mktemp("filter")


@pytest.fixture(scope="module")
def _upstreams(workdir):
    ups = [harness.Upstream("python", workdir), harness.Upstream("rust", workdir)]
    yield ups
    for u in ups:
        u.stop()


@pytest.fixture
def upstreams(_upstreams):
    """(python, rust) stand-ins, reset to answer 200 with zeroed counters."""
    for u in _upstreams:
        if not u.proc.alive():
            pytest.fail(f"upstream {u.name} died:\n{u.proc.log()}")
        u.reset()
    return tuple(_upstreams)


@pytest.fixture
def start_envoy(workdir, wasm):
    """start_envoy(bootstrap_dict) -> harness.Envoy; all are stopped (by PID) at teardown."""
    started = []

    def start(config, **kw):
        e = harness.Envoy(config, workdir, **kw)
        started.append(e)
        return e

    yield start
    for e in started:
        e.stop()


@pytest.fixture
def filtered_envoy(upstreams, start_envoy):
    """filtered_envoy(**plugin_overrides) -> Envoy with the filter in front of the stand-ins."""

    def start(route_timeout="2s", **overrides):
        py, rs = upstreams
        cfg = harness.filter_config(py, rs, **overrides)
        return start_envoy(harness.bootstrap([py, rs], [harness.wasm_filter(cfg)], route_timeout=route_timeout))

    return start


@pytest.fixture(scope="session")
def real_backends():
    py, rs = os.environ.get("ND_FILTER_PYTHON_URL"), os.environ.get("ND_FILTER_RUST_URL")
    if not (py and rs):
        pytest.fail("the real_backends tests need both services: run tests/filter/real_backends.sh (it starts "
                    "them), or set ND_FILTER_PYTHON_URL and ND_FILTER_RUST_URL; -m 'not real_backends' leaves them out")
    return harness.ExternalBackend("python", py), harness.ExternalBackend("rust", rs)
