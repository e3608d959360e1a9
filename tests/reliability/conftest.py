"""Fixtures of the reliability tests: services of the release binary, each stopped by
its PID (helpers in reliability_support.py).

Run: V=$(scripts/python-env.sh); $V/bin/python -m pytest tests/reliability -q
     (ND_BIN=path/to/neuro-divergent to test another build)
"""

from __future__ import annotations

import signal
from pathlib import Path

import pytest
from reliability_support import Service


def _service_pool(log_dir: Path):
    """Yields start(model_path, **env) -> Service; afterwards stops every service by PID and
    fails if one crashed or did not stop cleanly on SIGTERM."""
    started: list[Service] = []

    def start(model_path: Path, **env: str) -> Service:
        s = Service(model_path, log_dir / f"service-{len(started)}.log", env)
        started.append(s)
        return s

    yield start
    problems = []
    for s in started:
        if not s.alive():
            problems.append(f"pid {s.pid} exited with {s.proc.returncode} during the test:\n{s.log_tail()}")
            s.stop()
            continue
        status = s.stop()
        if status not in (0, -signal.SIGTERM):
            problems.append(f"pid {s.pid} did not stop cleanly on SIGTERM (status {status}):\n{s.log_tail()}")
    if problems:
        pytest.fail("\n".join(problems), pytrace=False)


@pytest.fixture
def start_service(tmp_path):
    """start_service(model_path, **env) -> Service, stopped by PID after the test."""
    yield from _service_pool(tmp_path)


@pytest.fixture(scope="module")
def start_module_service(tmp_path_factory):
    """Same, shared by a module's tests."""
    yield from _service_pool(tmp_path_factory.mktemp("services"))
