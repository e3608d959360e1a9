"""hey (Debian package `hey`): one command line for a scenario, run in the
foreground or in the background (own session, stopped by PID with SIGINT so it
prints its summary), and its summary parsed.

The same arguments serve Flagger's load-test webhook (`flagger_cmd`): there the
body is passed inline with -d, here from the file with -D.
"""

from __future__ import annotations

import os
import re
import shlex
import shutil
import signal
import subprocess
import time
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
BODY = REPO / "examples/predict-request.json"
MODEL = "mlp_d_standard"


def hey_bin() -> str:
    path = os.environ.get("HEY_BIN") or shutil.which("hey")
    if not path:
        raise RuntimeError("hey is not installed: apt-get install -y hey (scripts/setup.sh does it)")
    return path


def predict_url(base: str, model: str = MODEL) -> str:
    return f"{base.rstrip('/')}/predict?model={model}"


def command(url: str, *, duration: str | None = None, n: int | None = None, c: int = 4,
            q: float | None = None, body: Path = BODY, headers=(), timeout_s: int = 20) -> list[str]:
    """hey [-z D | -n N] -c C [-q Q] -t T -m POST -T application/json -D body URL"""
    args = [hey_bin()]
    if duration:
        args += ["-z", duration]
    elif n:
        args += ["-n", str(n)]
    args += ["-c", str(c)]
    if q:
        args += ["-q", f"{q:g}"]
    args += ["-t", str(timeout_s)]
    for h in headers:
        args += ["-H", h]
    args += ["-m", "POST", "-T", "application/json", "-D", str(body), url]
    return args


def flagger_cmd(url: str, hey_args: str = "-z 1m -q 10 -c 2", body: Path = BODY) -> str:
    """The command Flagger's load tester runs with sh -c (templates/flagger/canary.yaml
    builds the same shape from files/predict-request.json)."""
    import json

    inline = json.dumps(json.loads(body.read_text()), separators=(",", ":"))
    if "'" in inline:
        raise ValueError("the body must not contain a single quote (it is passed in single quotes)")
    return f"hey {hey_args} -m POST -T application/json -d '{inline}' {shlex.quote(url)}"


def parse(text: str) -> dict:
    """hey's summary -> {rps, total_s, latency_ms: {p10..p99}, slowest_ms, average_ms,
    status: {code: n}, errors: {message: n}, ok, failed}."""
    def num(pattern):
        m = re.search(pattern, text)
        try:
            return float(m.group(1)) if m else None
        except ValueError:
            return None

    # hey prints "99% in 0.0000 secs" when a run has too few requests to fill a
    # percentile; such a line carries no measurement, so it is left out.
    lat = {f"p{int(p)}": float(s) * 1000 for p, s in re.findall(r"^\s+(\d+)%+ in ([\d.]+) secs", text, re.M)
           if float(s) > 0}
    status = {int(code): int(n) for code, n in re.findall(r"^\s+\[(\d{3})\]\s+(\d+) responses", text, re.M)}
    errors: dict[str, int] = {}
    if "Error distribution:" in text:
        for n, msg in re.findall(r"^\s+\[(\d+)\]\s+(.+)$", text.split("Error distribution:", 1)[1], re.M):
            errors[msg.strip()] = errors.get(msg.strip(), 0) + int(n)
    ok = status.get(200, 0)
    failed = sum(n for code, n in status.items() if code != 200) + sum(errors.values())
    slowest, average = num(r"Slowest:\s+([\d.]+) secs"), num(r"Average:\s+([\d.]+) secs")
    return {
        "rps": num(r"Requests/sec:\s+([\d.]+)") or 0.0,
        "total_s": num(r"Total:\s+([\d.]+) secs"),
        "latency_ms": lat,
        "slowest_ms": slowest * 1000 if slowest is not None else None,
        "average_ms": average * 1000 if average is not None else None,
        "status": status,
        "errors": errors,
        "ok": ok,
        "failed": failed,
        "requests": ok + failed,
    }


def run(args: list[str], timeout: float = 600) -> dict:
    """hey in the foreground (its own session); returns the parsed summary + raw text."""
    p = subprocess.run(args, capture_output=True, text=True, timeout=timeout, start_new_session=True)
    if p.returncode != 0:
        raise RuntimeError(f"hey failed ({p.returncode}): {p.stderr.strip()}\n{shlex.join(args)}")
    out = parse(p.stdout)
    out["raw"] = p.stdout
    return out


class Background:
    """hey running while something else happens; stop() sends SIGINT (hey then
    prints its summary) and returns the parsed summary."""

    def __init__(self, args: list[str], log_path: Path):
        self.args = args
        self.log_path = Path(log_path)
        self._out = open(self.log_path, "wb")
        self.popen = subprocess.Popen(args, stdout=self._out, stderr=subprocess.STDOUT, start_new_session=True)
        self.pid = self.popen.pid
        self.started = time.monotonic()

    def stop(self, timeout: float = 30) -> dict:
        if self.popen.poll() is None:
            os.kill(self.pid, signal.SIGINT)
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(5)
        self._out.close()
        text = self.log_path.read_text(errors="replace")
        out = parse(text)
        out["raw"] = text
        out["wall_s"] = time.monotonic() - self.started
        return out

    def wait(self, timeout: float) -> dict:
        self.popen.wait(timeout)
        return self.stop()
