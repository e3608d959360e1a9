"""Abusive clients against the real release binary (the "Abusive clients"
part of the hardening work): each test starts its own
target/release/neuro-divergent (or $ND_BIN)

  serve --model-path tests/fixtures/bundles --host 127.0.0.1 --port <free>

with the environment overrides the abuse needs, remembers its PID, reads its
memory from /proc/<pid>/status, and stops it by PID (SIGTERM, SIGKILL after a
bound). A server that died during a test fails it, with its log.

Run: V=$(scripts/python-env.sh); $V/bin/python -m pytest tests/abuse -q -s
(make test-abuse). The measurements are printed per test and as a table at
the end.
"""

from __future__ import annotations

import os
import resource
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import pytest
from abuse_support import BUNDLES, REPO, RESULTS, mem_kb, request

READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
# The idle-connection test opens 3000 client sockets; the server (which
# inherits this process's limits) must be able to hold its own 1000 and more.
WANT_NOFILE = 16384


def _raise_nofile() -> None:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    want = WANT_NOFILE if hard == resource.RLIM_INFINITY else min(WANT_NOFILE, hard)
    if soft < want:
        resource.setrlimit(resource.RLIMIT_NOFILE, (want, hard))


_raise_nofile()


def _binary() -> Path:
    binary = Path(os.environ.get("ND_BIN", "target/release/neuro-divergent"))
    if not binary.is_absolute():
        binary = REPO / binary
    if not binary.is_file() or not os.access(binary, os.X_OK):
        pytest.fail(f"Rust service binary {binary} not found: make build (or set ND_BIN)", pytrace=False)
    return binary


def _free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def _log_tail(path: Path, n: int = 30) -> str:
    try:
        return "\n".join(path.read_text(errors="replace").splitlines()[-n:])
    except OSError:
        return "(no log)"


@dataclass
class Server:
    proc: subprocess.Popen
    port: int
    log: Path
    env: dict[str, str]

    @property
    def pid(self) -> int:
        return self.proc.pid

    def alive(self) -> bool:
        return self.proc.poll() is None

    def mem(self) -> dict[str, int]:
        return mem_kb(self.pid)

    def log_tail(self) -> str:
        return _log_tail(self.log)

    def stop(self) -> int | None:
        """SIGTERM by PID, SIGKILL after STOP_TIMEOUT_S; the exit status, or
        None when it had to be killed."""
        if self.proc.poll() is not None:
            return self.proc.returncode
        os.kill(self.pid, signal.SIGTERM)
        try:
            return self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.pid, signal.SIGKILL)
            self.proc.wait(timeout=STOP_TIMEOUT_S)
            return None


@pytest.fixture
def serve(tmp_path):
    """serve(**env) starts a server with those environment overrides and
    returns it once GET /ready is 200. Every server started is checked alive
    at the end of the test (a crash fails it) and stopped by PID."""
    binary = _binary()
    started: list[Server] = []

    def start(**overrides) -> Server:
        port = _free_port()
        env = dict(os.environ)
        env.update({"ND_LOG_LEVEL": "warn", "ND_RELOAD_INTERVAL_MS": "0", "ND_SHUTDOWN_TIMEOUT_MS": "3000"})
        env.update({f"ND_{k}": str(v) for k, v in overrides.items()})
        log = tmp_path / f"server-{len(started)}.log"
        cmd = [str(binary), "serve", "--model-path", str(BUNDLES), "--host", "127.0.0.1",
               "--port", str(port)]
        with open(log, "wb") as out:
            proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdout=out, stderr=subprocess.STDOUT,
                                    stdin=subprocess.DEVNULL, start_new_session=True)
        server = Server(proc, port, log, {k: str(v) for k, v in overrides.items()})
        started.append(server)
        deadline = time.monotonic() + READY_TIMEOUT_S
        while True:
            if proc.poll() is not None:
                pytest.fail(f"server exited with {proc.returncode} before ready:\n{_log_tail(log)}",
                            pytrace=False)
            try:
                if request(port, "GET", "/ready", timeout=2.0).status == 200:
                    break
            except OSError:
                pass
            if time.monotonic() > deadline:
                pytest.fail(f"server not ready after {READY_TIMEOUT_S} s:\n{_log_tail(log)}", pytrace=False)
            time.sleep(0.05)
        print(f"\n[server pid {proc.pid} port {port} env {server.env}]")
        return server

    yield start

    crashed = [s for s in started if not s.alive()]
    for s in started:
        s.stop()
    if crashed:
        s = crashed[0]
        pytest.fail(f"server pid {s.pid} died during the test (status {s.proc.returncode}):\n"
                    f"{s.log_tail()}", pytrace=False)
    for s in started:
        text = s.log.read_text(errors="replace")
        if "panicked" in text or "stack overflow" in text:
            pytest.fail(f"server pid {s.pid} panicked during the test:\n{s.log_tail()}", pytrace=False)


def pytest_terminal_summary(terminalreporter):
    if not RESULTS:
        return
    cols = ["case", "status", "time_s", "rss_before_mb", "peak_mb", "rss_after_mb", "bound"]
    rows = [[str(r[c]) for c in cols] for r in RESULTS]
    widths = [max(len(c), *(len(row[i]) for row in rows)) for i, c in enumerate(cols)]
    tr = terminalreporter
    tr.section("abuse measurements (RSS in MB from /proc/<pid>/status; peak = VmHWM during the abuse)")
    tr.write_line(" | ".join(c.ljust(w) for c, w in zip(cols, widths)))
    tr.write_line("-+-".join("-" * w for w in widths))
    for row in rows:
        tr.write_line(" | ".join(v.ljust(w) for v, w in zip(row, widths)))
    tr.write_line("")
    for r in RESULTS:
        tr.write_line(f"{r['case']}: {r['note']}")
