"""End-to-end tests on the real local mesh (loadtest/mesh.py): the Python
reference service, the Rust service (target/release/neuro-divergent), Envoy
1.40 with the Wasm filter (target/wasm32-wasip1/release/wasm_filter.wasm),
Prometheus, and hey as the client. Everything on 127.0.0.1, ephemeral ports,
every process in its own session and stopped by PID.

One mesh per module. A missing tool or build is a failure, not a skip.
Each test prints what it measured and writes loadtest/results/e2e-<name>.json.

Run: V=$(scripts/python-env.sh); $V/bin/python -m pytest tests/e2e -v -s
"""

from __future__ import annotations

import json
import shutil
import time

import pytest
from e2e_support import RESULTS, mesh_mod


@pytest.fixture(scope="session")
def tools():
    try:
        paths = mesh_mod.tool_paths()
    except RuntimeError as e:
        pytest.fail(f"{e} (scripts/setup.sh installs the tools; make run builds the binaries)")
    if not shutil.which("hey"):
        pytest.fail("hey is missing: apt-get install -y hey (scripts/setup.sh)")
    if not shutil.which("promtool"):
        pytest.fail("promtool is missing: apt-get install -y prometheus")
    return paths


@pytest.fixture(scope="session")
def record():
    """record(name, dict): prints the measurement and writes loadtest/results/e2e-<name>.json."""
    RESULTS.mkdir(parents=True, exist_ok=True)

    def rec(name, data):
        data = {"test": name, "at": time.strftime("%Y-%m-%dT%H:%M:%S"), **data}
        path = RESULTS / f"e2e-{name}.json"
        path.write_text(json.dumps(data, indent=1, default=str))
        print(f"\n[e2e {name}] " + json.dumps({k: v for k, v in data.items() if k not in ("test", "at")},
                                              default=str))
        return path

    return rec

