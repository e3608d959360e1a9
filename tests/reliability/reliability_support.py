"""Shared by the reliability tests (imported by name, not through conftest, so that
running several test directories together cannot mix up their conftest modules).

Black-box tests of the Rust service (target/release/neuro-divergent): every
test starts its own `neuro-divergent serve` on a temporary model path, 127.0.0.1
and a free port, with a short hot-reload period and JSON logs captured to a
file; the process is recorded by PID and stopped by that PID (SIGTERM, then
SIGKILL after a bound). Every wait is bounded.
"""

from __future__ import annotations

import hashlib
import json
import os
import re
import signal
import socket
import struct
import subprocess
import time
from pathlib import Path

import httpx
import pytest

REPO = Path(__file__).resolve().parents[2]
FIXTURES = REPO / "tests" / "fixtures"
BUNDLES = FIXTURES / "bundles"
CASES = FIXTURES / "cases"
RELOAD_INTERVAL_MS = 200
READY_TIMEOUT_S = 15.0
STOP_TIMEOUT_S = 10.0


def binary() -> Path:
    b = Path(os.environ.get("ND_BIN", "target/release/neuro-divergent"))
    if not b.is_absolute():
        b = REPO / b
    if not b.is_file() or not os.access(b, os.X_OK):
        pytest.fail(f"Rust service binary {b} not found: build it (make build) or set ND_BIN", pytrace=False)
    return b


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_until(cond, timeout: float, what, period: float = 0.02):
    """Polls cond() until it returns something truthy; fails after timeout seconds.
    `what` (a string, or a callable evaluated on failure) says what was awaited."""
    deadline = time.monotonic() + timeout
    while True:
        v = cond()
        if v:
            return v
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout} s waiting for {what() if callable(what) else what}")
        time.sleep(period)


class Service:
    """One running `neuro-divergent serve`, its log file and an HTTP client."""

    def __init__(self, model_path: Path, log_path: Path, env: dict[str, str] | None = None):
        self.model_path = model_path
        self.log_path = log_path
        self.port = free_port()
        self.base_url = f"http://127.0.0.1:{self.port}"
        full_env = dict(os.environ)
        full_env.update({"RELOAD_INTERVAL_MS": str(RELOAD_INTERVAL_MS), "LOG_FORMAT": "json",
                         "LOG_LEVEL": "info", "EAGER_LOAD": "true"})
        full_env.pop("DEFAULT_MODEL", None)
        full_env.pop("ND_CONFIG", None)
        full_env.update(env or {})
        cmd = [str(binary()), "serve", "--model-path", str(model_path), "--host", "127.0.0.1",
               "--port", str(self.port)]
        with open(log_path, "wb") as log:
            self.proc = subprocess.Popen(cmd, cwd=REPO, env=full_env, stdout=log, stderr=subprocess.STDOUT,
                                         stdin=subprocess.DEVNULL, start_new_session=True)
        self.pid = self.proc.pid
        self.client = httpx.Client(base_url=self.base_url, timeout=10.0)
        try:
            self._wait_ready()
        except BaseException:
            self.stop()
            raise

    def _wait_ready(self):
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if self.proc.poll() is not None:
                pytest.fail(f"service exited with {self.proc.returncode} before ready:\n{self.log_tail()}",
                            pytrace=False)
            try:
                if self.client.get("/ready", timeout=2.0).status_code == 200:
                    return
            except httpx.TransportError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"service not ready after {READY_TIMEOUT_S} s:\n{self.log_tail()}", pytrace=False)
            time.sleep(0.02)

    # --- process -------------------------------------------------------------
    def alive(self) -> bool:
        return self.proc.poll() is None

    def stop(self) -> int | None:
        """SIGTERM by PID, SIGKILL after a bound; the exit status, or None if killed."""
        self.client.close()
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return None

    # --- logs ----------------------------------------------------------------
    def log_text(self) -> str:
        try:
            return self.log_path.read_text(errors="replace")
        except OSError:
            return ""

    def log_tail(self, n: int = 30) -> str:
        return "\n".join(self.log_text().splitlines()[-n:]) or "(empty log)"

    def log_records(self) -> list[dict]:
        out = []
        for line in self.log_text().splitlines():
            try:
                rec = json.loads(line)
            except ValueError:
                continue
            if isinstance(rec, dict):
                out.append(rec)
        return out

    def refusals(self, bundle: str) -> list[dict]:
        """ERROR log records of this bundle refused (new version or first load)."""
        return [r for r in self.log_records()
                if r.get("level") == "ERROR" and r.get("fields", {}).get("bundle") == bundle
                and "refused" in r.get("fields", {}).get("message", "")]

    # --- HTTP ----------------------------------------------------------------
    def predict(self, bundle: str, request: dict) -> httpx.Response:
        return self.client.post(f"/predict?model={bundle}", json=request)

    def models(self) -> dict[str, dict]:
        r = self.client.get("/models")
        assert r.status_code == 200, r.text
        return {b["name"]: b for b in r.json()["models"]}

    def metric(self, name: str, **labels: str) -> float:
        """Sum of the samples of `name` whose labels include `labels` (0 if none)."""
        text = self.client.get("/metrics").text
        total = 0.0
        for m in re.finditer(r"^" + re.escape(name) + r"(?:\{([^}]*)\})? (\S+)$", text, re.M):
            got = dict(re.findall(r'(\w+)="((?:[^"\\]|\\.)*)"', m.group(1) or ""))
            if all(got.get(k) == v for k, v in labels.items()):
                total += float(m.group(2))
        return total

    def reload_failures(self, bundle: str) -> float:
        return self.metric("neuro_divergent_reload_failures_total", bundle=bundle)

    def loads(self, bundle: str) -> float:
        return self.metric("neuro_divergent_cache_loads_total", bundle=bundle)


# --- bundles on disk -----------------------------------------------------------

Files = dict[str, bytes]


def read_bundle(d: Path) -> Files:
    return {p.name: p.read_bytes() for p in sorted(d.iterdir()) if p.is_file()}


def deploy(live: Path, files: Files, staging: Path, how: str = "rename", force: bool = False) -> None:
    """Makes `live` hold exactly `files`. rename: each changed file written under `staging` (same
    filesystem) and renamed over the live one, as a deployment does; inplace: each changed file
    rewritten in place (same-size files without truncating, like rsync --inplace; others truncated
    and rewritten, like cp). force: rewrite unchanged files too (new mtime)."""
    staging.mkdir(parents=True, exist_ok=True)
    current = read_bundle(live)
    for name, data in files.items():
        if not force and current.get(name) == data:
            continue
        if how == "rename":
            tmp = staging / name
            tmp.write_bytes(data)
            os.replace(tmp, live / name)
        elif how == "inplace":
            path = live / name
            if path.exists() and path.stat().st_size == len(data):
                with open(path, "r+b") as f:
                    f.write(data)
            else:
                with open(path, "wb") as f:
                    f.write(data)
        else:
            raise ValueError(how)
    for name in current:
        if name not in files:
            (live / name).unlink()


def contract_hash(files: Files) -> str:
    """docs/contract.md: sha256 over name, NUL, u64 LE size, bytes of every file, sorted by name."""
    h = hashlib.sha256()
    for name in sorted(files, key=lambda n: n.encode()):
        h.update(name.encode() + b"\0" + struct.pack("<Q", len(files[name])) + files[name])
    return "sha256:" + h.hexdigest()
