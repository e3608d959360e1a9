"""Starts the real services for the contract suite: one session-scoped
fixture, parametrized over both implementations, so every test in
test_contract.py runs unchanged against each.

  python: sys.executable -m reference_service   (PYTHONPATH=python)
  rust:   $ND_BIN serve   (default target/release/neuro-divergent)

Run: V=$(scripts/python-env.sh); $V/bin/python -m pytest tests/contract -q
     (-k python or -k rust for one service)
"""

from __future__ import annotations

import os
import signal
import socket
import subprocess
import sys
import time
from dataclasses import dataclass
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "tests" / "fixtures" / "bundles"
CASES = REPO / "tests" / "fixtures" / "cases"
# Small, so the 413 tests send little; every golden case fits well below it.
MAX_BODY_BYTES = 256 * 1024
# Small too (MAX_SERIES, both services): golden cases hold at most a few series.
MAX_SERIES = 50
READY_TIMEOUT_S = {"python": 60.0, "rust": 30.0}
STOP_TIMEOUT_S = 20.0


@dataclass
class Service:
    kind: str
    base_url: str
    pid: int
    client: httpx.Client


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _command(kind: str, port: int) -> tuple[list[str], dict[str, str]]:
    common = ["--model-path", str(BUNDLES), "--port", str(port), "--host", "127.0.0.1",
              "--max-body-bytes", str(MAX_BODY_BYTES)]
    env = dict(os.environ, MAX_SERIES=str(MAX_SERIES))
    if kind == "python":
        env["PYTHONPATH"] = os.pathsep.join(filter(None, [str(REPO / "python"), env.get("PYTHONPATH")]))
        return [sys.executable, "-m", "reference_service", *common], env
    binary = Path(os.environ.get("ND_BIN", "target/release/neuro-divergent"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"Rust service binary {binary} not found: build it (cargo build --release) "
                    f"or set ND_BIN; run -k python to test only the Python service", pytrace=False)
    return [str(binary), "serve", *common], env


def _log_tail(path: Path, n: int = 40) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


def _stop(proc: subprocess.Popen) -> int | None:
    """SIGTERM by PID, then SIGKILL after a bound; returns the exit status or
    None when it had to be killed."""
    if proc.poll() is not None:
        return proc.returncode
    os.kill(proc.pid, signal.SIGTERM)
    try:
        return proc.wait(timeout=STOP_TIMEOUT_S)
    except subprocess.TimeoutExpired:
        os.kill(proc.pid, signal.SIGKILL)
        proc.wait()
        return None


@pytest.fixture(scope="session", params=["python", "rust"])
def service(request, tmp_path_factory):
    kind = request.param
    port = _free_port()
    cmd, env = _command(kind, port)
    log_path = tmp_path_factory.mktemp(f"service-{kind}") / "service.log"
    with open(log_path, "wb") as log:
        proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT,
                                stdin=subprocess.DEVNULL, start_new_session=True)
    base_url = f"http://127.0.0.1:{port}"
    client = httpx.Client(base_url=base_url, timeout=30.0)
    try:
        started = time.monotonic()
        deadline = started + READY_TIMEOUT_S[kind]
        while True:
            if proc.poll() is not None:
                pytest.fail(f"{kind} service exited with {proc.returncode} before ready:\n{_log_tail(log_path)}",
                            pytrace=False)
            try:
                if client.get("/ready", timeout=2.0).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"{kind} service not ready after {READY_TIMEOUT_S[kind]} s:\n{_log_tail(log_path)}",
                            pytrace=False)
            time.sleep(0.1)
        sys.stderr.write(f"\n[{kind} service pid {proc.pid} ready in {time.monotonic() - started:.1f} s]\n")
        yield Service(kind, base_url, proc.pid, client)
    finally:
        client.close()
        status = _stop(proc)
    # A graceful stop: SIGTERM ends the process (exit 0 or by the signal itself).
    if status not in (0, -signal.SIGTERM):
        pytest.fail(f"{kind} service did not stop cleanly on SIGTERM (status {status}):\n{_log_tail(log_path)}",
                    pytrace=False)
