"""The filter's integration tests: Envoy, its configuration and processes
(loadtest/envoy.py, shared with `make run`), plus what only the tests use:
controllable stand-in upstreams (upstream.py) and request helpers.

Everything listens on 127.0.0.1 with ephemeral ports. Processes start in their
own session (setsid); they are stopped by their recorded PID (process group),
never by name.
"""

import collections
import os
import re
import subprocess
import sys
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
if str(HERE.parent.parent) not in sys.path:
    sys.path.insert(0, str(HERE.parent.parent))
from loadtest.envoy import (  # noqa: E402  (Envoy, its configuration and processes: shared with make run)
    REPO,
    SHIPPED,
    TARGET,
    WASM,
    WASM_TYPE,
    Envoy,
    ExternalBackend,
    Proc,
    bootstrap,
    cluster,
    ecds_filter,
    envoy_bin,
    filter_config,
    next_base_id,
    stats_tags,
    wasm_config,
    wasm_filter,
    write_ecds,
)

__all__ = [
    "REPO", "SHIPPED", "TARGET", "WASM", "WASM_TYPE", "Envoy", "ExternalBackend", "Proc", "bootstrap", "cluster",
    "ecds_filter", "envoy_bin", "filter_config", "next_base_id", "stats_tags", "wasm_config", "wasm_filter",
    "write_ecds", "HERE", "MINIMAL_WASM", "Upstream", "PREDICT", "served_by",
]

MINIMAL_WASM = Path(
    os.environ.get("ND_MINIMAL_WASM", TARGET / "wasm32-wasip1/release/examples/minimal_filter.wasm")
)


class Upstream:
    """tests/filter/upstream.py: a controllable /predict backend."""

    def __init__(self, name, workdir):
        self.name = name
        self.proc = Proc(
            [sys.executable, str(HERE / "upstream.py"), "--name", name],
            Path(workdir) / f"upstream-{name}.log",
            stdout=subprocess.PIPE,
        )
        line = self.proc.popen.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            self.proc.stop()
            raise RuntimeError(f"upstream {name} did not start: {line!r} {self.proc.log()}")
        self.host, self.port = "127.0.0.1", int(m.group(1))
        self.url = f"http://{self.host}:{self.port}"

    def control(self, **kw):
        httpx.post(self.url + "/__control", json=kw or {"mode": "ok"}, timeout=5).raise_for_status()

    def reset(self):
        self.control(mode="ok")
        httpx.post(self.url + "/__reset", timeout=5).raise_for_status()

    def stats(self):
        return httpx.get(self.url + "/__stats", timeout=5).json()

    def stop(self):
        self.proc.stop()


# ---------------------------------------------------------------- requests

PREDICT = {"df": [{"unique_id": "s1", "ds": "2024-01-31", "y": 112.0}]}


def served_by(envoy, n, headers=None, fresh_connections=False, expect_status=200):
    """Sends n /predict requests; returns Counter of the x-upstream that answered.
    fresh_connections: a new connection per request, so both Envoy workers serve."""
    seen = collections.Counter()
    with httpx.Client(timeout=5) as client:
        for i in range(n):
            h = dict(headers(i) if callable(headers) else headers or {})
            if fresh_connections:
                h["connection"] = "close"
            r = client.post(envoy.url + "/predict", json=PREDICT, headers=h)
            if expect_status is not None:
                assert r.status_code == expect_status, (r.status_code, r.text)
            seen[r.headers.get("x-upstream", f"status {r.status_code}")] += 1
    return seen


# ---------------------------------------------------------------- configuration


