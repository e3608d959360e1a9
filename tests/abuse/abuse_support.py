"""Raw-socket helpers for the abuse suite: HTTP/1.1 spoken by hand (so the
abuse is exactly what goes on the wire), /proc memory readings, and the
table of measurements printed at the end of the run.

Every blocking call here takes a deadline: nothing can hang a test.
"""

from __future__ import annotations

import errno
import json
import os
import select
import socket
import time
from dataclasses import dataclass, field
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
BUNDLES = REPO / "tests" / "fixtures" / "bundles"
CASES = REPO / "tests" / "fixtures" / "cases"
MODEL = "mlp_d_standard"  # freq D, h 7, no exogenous
VALID_CASE = CASES / f"{MODEL}__tail.json"

# One row per measurement, printed as a table by conftest.pytest_terminal_summary.
RESULTS: list[dict] = []

CLOSED_ERRNOS = {errno.ECONNRESET, errno.EPIPE, errno.ECONNABORTED, errno.ENOTCONN}


# ------------------------------------------------------------------ memory

def mem_kb(pid: int) -> dict[str, int]:
    """VmRSS (now) and VmHWM (peak since start or the last reset_peak), kB."""
    out = {}
    with open(f"/proc/{pid}/status") as f:
        for line in f:
            key = line.split(":", 1)[0]
            if key in ("VmRSS", "VmHWM", "Threads"):
                out[key] = int(line.split()[1])
    return out


def rss_mb(pid: int) -> float:
    return mem_kb(pid)["VmRSS"] / 1024


def peak_mb(pid: int) -> float:
    return mem_kb(pid)["VmHWM"] / 1024


def reset_peak(pid: int) -> None:
    """Resets VmHWM to the current RSS (Linux clear_refs 5), so each abuse's
    peak is its own and not the startup's."""
    with open(f"/proc/{pid}/clear_refs", "w") as f:
        f.write("5")


def socket_fds(pid: int) -> int:
    """Sockets the process holds open (listener included)."""
    n = 0
    for fd in os.listdir(f"/proc/{pid}/fd"):
        try:
            if os.readlink(f"/proc/{pid}/fd/{fd}").startswith("socket:"):
                n += 1
        except OSError:
            pass
    return n


# ------------------------------------------------------------- HTTP by hand

@dataclass
class Reply:
    """What came back on a connection. status None: the server sent nothing
    (closed or reset without a response, or nothing before the deadline)."""
    status: int | None = None
    headers: dict[str, str] = field(default_factory=dict)
    body: bytes = b""
    closed: bool = False  # EOF or reset seen
    timed_out: bool = False
    elapsed: float = 0.0
    body_len: int = 0  # bytes of body received (may exceed len(body) when not kept)

    def json(self):
        try:
            return json.loads(self.body)
        except ValueError:
            return None

    def code(self) -> str | None:
        j = self.json()
        return j.get("error", {}).get("code") if isinstance(j, dict) else None

    def __str__(self) -> str:
        what = f"status {self.status}" if self.status else "no response"
        flags = ("closed " if self.closed else "") + ("timed out " if self.timed_out else "")
        return f"{what} {flags}after {self.elapsed:.2f} s: {self.body[:200]!r}"


def connect(port: int, timeout: float = 2.0) -> socket.socket:
    s = socket.create_connection(("127.0.0.1", port), timeout=timeout)
    s.setsockopt(socket.IPPROTO_TCP, socket.TCP_NODELAY, 1)
    return s


def open_many(port: int, n: int, within: float, first: bytes = b"",
              connect_timeout: float = 3.0) -> tuple[list[socket.socket], int]:
    """Opens up to n connections (each sending `first`, if any) but stops at
    `within` seconds: a server that stops accepting cannot stretch the test
    (a full backlog makes each connect wait). Returns (sockets, failures);
    the caller closes the sockets."""
    deadline = time.monotonic() + within
    socks, failures = [], 0
    for _ in range(n):
        if time.monotonic() > deadline:
            break
        try:
            s = socket.create_connection(("127.0.0.1", port), timeout=connect_timeout)
        except OSError:
            failures += 1
            continue
        socks.append(s)
        if first:
            s.sendall(first)
    return socks, failures


def head(method: str, path: str, headers: dict[str, str] | list[tuple[str, str]] | None = None) -> bytes:
    items = headers.items() if isinstance(headers, dict) else (headers or [])
    lines = [f"{method} {path} HTTP/1.1", "host: abuse.test", *(f"{k}: {v}" for k, v in items)]
    return ("\r\n".join(lines) + "\r\n\r\n").encode()


def read_reply(sock: socket.socket, timeout: float, *, started: float | None = None,
               keep_body: int | None = None) -> Reply:
    """Reads one response (Content-Length framed) or until EOF/reset/deadline.
    keep_body: keep only that many body bytes (count the rest), for huge answers."""
    started = time.monotonic() if started is None else started
    deadline = time.monotonic() + timeout
    r = Reply()
    buf = bytearray()
    header_end = -1
    want = None
    kept = bytearray()
    counted = 0
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            r.timed_out = True
            break
        sock.settimeout(left)
        try:
            chunk = sock.recv(1 << 20)
        except TimeoutError:
            r.timed_out = True
            break
        except OSError as e:
            if e.errno in CLOSED_ERRNOS:
                r.closed = True
                break
            raise
        if not chunk:
            r.closed = True
            break
        if header_end < 0:
            buf += chunk
            header_end = buf.find(b"\r\n\r\n")
            if header_end < 0:
                continue
            _parse_head(bytes(buf[:header_end]), r)
            want = int(r.headers["content-length"]) if "content-length" in r.headers else None
            chunk = bytes(buf[header_end + 4:])
        counted += len(chunk)
        if keep_body is None or len(kept) < keep_body:
            kept += chunk if keep_body is None else chunk[: keep_body - len(kept)]
        if want is not None and counted >= want:
            break
    if header_end < 0 and buf:
        _parse_head(bytes(buf), r)
    r.body = bytes(kept)
    r.body_len = counted
    r.elapsed = time.monotonic() - started
    return r


def _parse_head(raw: bytes, r: Reply) -> None:
    lines = raw.decode("latin-1").split("\r\n")
    parts = lines[0].split(" ")
    if len(parts) >= 2 and parts[0].startswith("HTTP/") and parts[1].isdigit():
        r.status = int(parts[1])
    for line in lines[1:]:
        if ":" in line:
            k, v = line.split(":", 1)
            r.headers[k.strip().lower()] = v.strip()


def wait_closed(sock: socket.socket, timeout: float) -> tuple[bool, bytes]:
    """Waits for EOF/reset on a connection, draining whatever arrives (an
    error response the server may send before closing). (closed, data)."""
    deadline = time.monotonic() + timeout
    data = bytearray()
    while True:
        left = deadline - time.monotonic()
        if left <= 0:
            return False, bytes(data)
        sock.settimeout(left)
        try:
            chunk = sock.recv(65536)
        except TimeoutError:
            return False, bytes(data)
        except OSError as e:
            if e.errno in CLOSED_ERRNOS:
                return True, bytes(data)
            raise
        if not chunk:
            return True, bytes(data)
        data += chunk


def is_open(sock: socket.socket) -> bool:
    """True when the peer has neither closed nor reset the connection (and
    sent nothing): a non-blocking peek would block. Leaves the socket in
    non-blocking mode (a socket with a timeout would first wait that long)."""
    sock.setblocking(False)
    try:
        data = sock.recv(1, socket.MSG_PEEK | socket.MSG_DONTWAIT)
    except BlockingIOError:
        return True
    except OSError as e:
        if e.errno in CLOSED_ERRNOS:
            return False
        raise
    return bool(data)  # data pending: open (an answer); b"": EOF


def _readable(sock: socket.socket, timeout: float) -> bool:
    """poll(2), not select(2): the idle-connection test pushes fds past 1024."""
    p = select.poll()
    p.register(sock, select.POLLIN | select.POLLERR | select.POLLHUP)
    return bool(p.poll(timeout * 1000))


def stream_request(port: int, head_bytes: bytes, pieces, *, timeout: float,
                   pause: float = 0.0, keep_body: int | None = 65536,
                   await_close: float = 0.0) -> tuple[Reply, int]:
    """Sends the head, then each piece of `pieces` (an iterable of bytes), and
    stops as soon as the server answers or closes: between pieces it checks
    whether the socket is readable. await_close: after the answer, wait that
    long for the server to close (reply.closed). Returns (reply, bytes sent
    after the head)."""
    started = time.monotonic()
    deadline = started + timeout
    sock = connect(port)
    sent = 0
    try:
        sock.sendall(head_bytes)
        for piece in pieces:
            if time.monotonic() > deadline:
                break
            if _readable(sock, pause):
                break
            try:
                sock.settimeout(max(0.05, deadline - time.monotonic()))
                sock.sendall(piece)
            except TimeoutError:
                break  # the server stopped reading: see what it answered
            except OSError as e:
                if e.errno in CLOSED_ERRNOS:
                    break
                raise
            sent += len(piece)
        reply = read_reply(sock, max(0.1, deadline - time.monotonic()), started=started,
                           keep_body=keep_body)
        if await_close and not reply.closed:
            reply.closed, _ = wait_closed(sock, await_close)
        return reply, sent
    finally:
        sock.close()


def request(port: int, method: str, path: str, body: bytes = b"", *,
            headers: dict[str, str] | None = None, timeout: float = 10.0,
            keep_body: int | None = None) -> Reply:
    hdrs = {"connection": "close", "content-length": str(len(body)), **(headers or {})}
    started = time.monotonic()
    sock = connect(port, timeout)
    try:
        try:
            sock.settimeout(timeout)
            sock.sendall(head(method, path, hdrs) + body)
        except OSError as e:
            if e.errno not in CLOSED_ERRNOS:
                raise
        return read_reply(sock, timeout, started=started, keep_body=keep_body)
    finally:
        sock.close()


def predict(port: int, body: bytes, *, timeout: float = 10.0, keep_body: int | None = None,
            model: str = MODEL) -> Reply:
    return request(port, "POST", f"/predict?model={model}", body,
                   headers={"content-type": "application/json"}, timeout=timeout, keep_body=keep_body)


def valid_body() -> bytes:
    return json.dumps(json.loads(VALID_CASE.read_text())["request"]).encode()


def assert_predict_ok(port: int) -> float:
    """A valid /predict on a fresh connection answers 200 with the golden
    case's row count: the service is unharmed. Returns the latency."""
    case = json.loads(VALID_CASE.read_text())
    r = predict(port, json.dumps(case["request"]).encode(), timeout=10.0)
    assert r.status == 200, f"valid /predict after the abuse: {r}"
    got = r.json()
    assert got["model"] == MODEL
    assert len(got["predictions"]) == len(case["expected"]["predictions"])
    return r.elapsed


def wait_predict_ok(port: int, timeout: float) -> float:
    """assert_predict_ok, retried until `timeout` (connections being released)."""
    deadline = time.monotonic() + timeout
    while True:
        try:
            return assert_predict_ok(port)
        except (AssertionError, OSError):
            if time.monotonic() > deadline:
                raise
            time.sleep(0.1)


def metric(port: int, name: str) -> float | None:
    """A sample's value from /metrics (first line starting with `name`)."""
    r = request(port, "GET", "/metrics", timeout=5.0)
    assert r.status == 200, str(r)
    for line in r.body.decode().splitlines():
        if line.startswith(name + " ") or line.startswith(name + "{"):
            return float(line.rsplit(" ", 1)[1])
    return None


def record(case: str, *, status: str, seconds: float, rss_before: float, peak: float,
           rss_after: float, bound: str, note: str = "") -> None:
    row = {"case": case, "status": status, "time_s": round(seconds, 3),
           "rss_before_mb": round(rss_before, 1), "peak_mb": round(peak, 1),
           "rss_after_mb": round(rss_after, 1), "bound": bound, "note": note}
    RESULTS.append(row)
    print(f"\n[abuse {case}] " + json.dumps({k: v for k, v in row.items() if k != "case"}))
