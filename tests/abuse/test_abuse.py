"""Abusive clients: each abuse is bounded in time and memory, answered with
the right status (docs/contract.md), measured, and leaves the service
unharmed (a valid /predict on a new connection answers 200 afterwards).

Raw sockets throughout: an HTTP library would complete, buffer or refuse to
send what these clients send. Every wait has a deadline, so no test can hang.

Memory: RSS from /proc/<pid>/status; VmHWM is reset (clear_refs) right
before each abuse, so "peak" is the abuse's own high-water mark. Bounds are
stated next to each test; see the table printed at the end.
"""

from __future__ import annotations

import concurrent.futures as cf
import itertools
import json
import math
import socket
import time
from collections import Counter

from abuse_support import (
    CLOSED_ERRNOS,
    MODEL,
    assert_predict_ok,
    connect,
    head,
    is_open,
    metric,
    open_many,
    peak_mb,
    predict,
    read_reply,
    record,
    request,
    reset_peak,
    rss_mb,
    socket_fds,
    stream_request,
    wait_closed,
    wait_predict_ok,
)

MIB = 1024 * 1024
PREDICT = f"/predict?model={MODEL}"
JSON = {"content-type": "application/json"}
# Scheduling slack on top of a configured timeout (a loaded CI machine).
SLACK_S = 2.0


def start_measure(server) -> tuple[float, float]:
    before = rss_mb(server.pid)
    reset_peak(server.pid)
    return before, time.monotonic()


# ----------------------------------------------------- 1. slow headers

HEADER_TIMEOUT_MS = 2000
STALLED_HEADS = 200
SLOW_HEADERS_GROWTH_MB = 32  # 201 half-sent heads: a few kB each


def test_slow_headers_are_cut_at_the_header_read_timeout(serve):
    """Slowloris: a head sent a byte every 0.5 s, and 200 clients that sent
    half a head and stall. HEADER_READ_TIMEOUT_MS=2000: every one of them is
    closed by the server within timeout + slack (hyper closes without an
    answer, or with 408), while other clients are served meanwhile."""
    srv = serve(HEADER_READ_TIMEOUT_MS=HEADER_TIMEOUT_MS)
    bound_s = HEADER_TIMEOUT_MS / 1000 + SLACK_S
    before, t0 = start_measure(srv)

    stalled, _ = open_many(srv.port, STALLED_HEADS, 5.0,
                           b"POST /predict HTTP/1.1\r\nhost: abuse.test\r\ncontent-type: appl")
    stalled_at = time.monotonic()
    assert len(stalled) == STALLED_HEADS, f"only {len(stalled)} connections opened in 5 s"

    slow = connect(srv.port)
    slow_at = time.monotonic()
    message = head("GET", "/health", {"x-slow": "a" * 200})  # > 100 s at 2 bytes/s
    closed_after, answer, sent = None, b"", 0
    # Other clients are served while the slow ones hold their connections.
    health = request(srv.port, "GET", "/health", timeout=3.0)
    for byte in message:
        try:
            slow.sendall(bytes([byte]))
            sent += 1
        except OSError as e:
            if e.errno not in CLOSED_ERRNOS:
                raise
            closed_after = time.monotonic() - slow_at
            break
        closed, data = wait_closed(slow, 0.5)  # the trickle's pause, watching for the close
        answer += data
        if closed:
            closed_after = time.monotonic() - slow_at
            break
        if time.monotonic() - slow_at > bound_s + 1.0:
            break
    slow.close()

    still_open = 0
    for s in stalled:
        closed, data = wait_closed(s, max(0.0, stalled_at + bound_s - time.monotonic()))
        still_open += not closed
        s.close()
    all_closed_after = time.monotonic() - stalled_at
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    record("1 slow headers (slowloris)",
           status=f"closed after {closed_after:.2f} s" if closed_after else "NOT CLOSED",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"close <= {bound_s:.0f} s; peak < before + {SLOW_HEADERS_GROWTH_MB} MB",
           note=f"{sent} head bytes trickled; {STALLED_HEADS} stalled heads closed after "
                f"{all_closed_after:.2f} s ({still_open} still open); answer {answer[:40]!r}; "
                f"valid predict {predict_s * 1000:.0f} ms")

    assert health.status == 200, f"/health while slow clients hold connections: {health}"
    assert closed_after is not None and closed_after <= bound_s, (
        f"a head trickled a byte per 0.5 s was not closed within {bound_s} s "
        f"(HEADER_READ_TIMEOUT_MS={HEADER_TIMEOUT_MS}): {sent} bytes accepted")
    assert answer == b"" or answer.startswith(b"HTTP/1.1 408"), answer[:200]
    assert still_open == 0, f"{still_open}/{STALLED_HEADS} half-sent heads still open after {bound_s} s"
    assert peak < before + SLOW_HEADERS_GROWTH_MB


# ------------------------------------------------------- 2. slow body

REQUEST_TIMEOUT_MS = 2000
SLOW_BODIES = 20
SLOW_BODY_GROWTH_MB = 32


def test_slow_body_gets_504_at_the_request_timeout(serve):
    """Full headers with Content-Length 10000, then the body a byte every
    0.2 s (plus 20 clients that stall mid-body). REQUEST_TIMEOUT_MS=2000
    covers the body upload: each gets 504 `timeout` (docs/contract.md: "the
    request exceeded the configured time") within timeout + slack."""
    srv = serve(REQUEST_TIMEOUT_MS=REQUEST_TIMEOUT_MS)
    bound_s = REQUEST_TIMEOUT_MS / 1000 + SLACK_S
    before, t0 = start_measure(srv)
    hdr = head("POST", PREDICT, {**JSON, "content-length": "10000"})

    stalled = []
    for _ in range(SLOW_BODIES):
        s = connect(srv.port)
        s.sendall(hdr + b'{"df": [{"unique_id": "s1", ')
        stalled.append((s, time.monotonic()))

    pieces = itertools.chain([b'{"df": ['], itertools.repeat(b" ", 10000 - 8))
    reply, sent = stream_request(srv.port, hdr, pieces, timeout=bound_s + 1.0, pause=0.2)
    health = request(srv.port, "GET", "/health", timeout=3.0)

    stalled_replies = []
    for s, at in stalled:
        r = read_reply(s, max(0.1, at + bound_s + 1.0 - time.monotonic()), started=at)
        stalled_replies.append(r)
        s.close()
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    statuses = sorted({r.status for r in stalled_replies}, key=str)
    slowest = max(r.elapsed for r in stalled_replies)
    record("2 slow body", status=f"{reply.status} {reply.code()} after {reply.elapsed:.2f} s",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"504 <= {bound_s:.0f} s; peak < before + {SLOW_BODY_GROWTH_MB} MB",
           note=f"{sent} body bytes trickled; {SLOW_BODIES} stalled bodies: statuses {statuses}, "
                f"slowest {slowest:.2f} s; valid predict {predict_s * 1000:.0f} ms")

    assert (reply.status, reply.code()) == (504, "timeout"), str(reply)
    assert reply.elapsed <= bound_s, str(reply)
    assert health.status == 200, str(health)
    for r in stalled_replies:
        assert (r.status, r.code()) == (504, "timeout") and r.elapsed <= bound_s + 0.5, str(r)
    assert peak < before + SLOW_BODY_GROWTH_MB


# ------------------------------------------- 3. thousands of idle connections

MAX_CONNECTIONS = 1000
IDLE_CLIENTS = 3000
IDLE_RSS_BOUND_MB = 64  # measured ~20 MB with 1000 idle connections held


def test_idle_connections_are_bounded_by_max_connections(serve):
    """3000 TCP connections that send nothing, MAX_CONNECTIONS=1000: the
    server holds at most 1000 (the rest are accepted and closed at once,
    counted in neuro_divergent_connections_rejected_total), a client past
    the limit is closed, the held connections still work, RSS stays under
    IDLE_RSS_BOUND_MB, and once the idle ones go a valid /predict answers."""
    srv = serve(MAX_CONNECTIONS=MAX_CONNECTIONS, HEADER_READ_TIMEOUT_MS=60000)
    socks: list[socket.socket] = []
    try:
        _idle_connections(srv, socks)
    finally:
        for s in socks:
            s.close()


def _idle_connections(srv, socks: list[socket.socket]) -> None:
    before, t0 = start_measure(srv)
    # connect timeout 3 s: a SYN dropped on a full accept queue is retried after 1 s.
    opened, connect_failures = open_many(srv.port, IDLE_CLIENTS, 25.0)
    socks.extend(opened)
    opened_s = time.monotonic() - t0
    assert len(socks) + connect_failures == IDLE_CLIENTS, (
        f"only {len(socks)} connections (+{connect_failures} failed) opened in 25 s")

    deadline = time.monotonic() + 3.0
    while True:
        held = [s for s in socks if is_open(s)]
        if len(held) <= MAX_CONNECTIONS or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    settled_s = time.monotonic() - t0
    server_sockets = socket_fds(srv.pid)
    rss_held = rss_mb(srv.pid)

    # Past the limit: accepted and closed, no answer.
    extra = request(srv.port, "GET", "/health", timeout=3.0)
    # The held connections are real: they answer (and stay open, keep-alive).
    held_answers = []
    for s in held[:5]:
        s.settimeout(3.0)
        s.sendall(head("GET", "/health"))
        held_answers.append(read_reply(s, 3.0).status)

    for s in socks:
        s.close()
    released_at = time.monotonic()
    wait_predict_ok(srv.port, 5.0)
    recovered_s = time.monotonic() - released_at
    peak = peak_mb(srv.pid)
    rejected = metric(srv.port, "neuro_divergent_connections_rejected_total")
    open_gauge = metric(srv.port, "neuro_divergent_connections_open")
    after = rss_mb(srv.pid)
    record("3 idle connections", status=f"{len(held)} held of {len(socks)}",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"held <= {MAX_CONNECTIONS}; RSS < {IDLE_RSS_BOUND_MB} MB",
           note=f"RSS with {len(held)} idle held {rss_held:.1f} MB; server sockets {server_sockets}; "
                f"opened in {opened_s:.2f} s, settled {settled_s:.2f} s, {connect_failures} connect "
                f"failures; extra conn: {extra.status or 'closed'}; held answer {held_answers}; "
                f"rejected_total {rejected}; open gauge {open_gauge}; predict ok "
                f"{recovered_s:.2f} s after release")

    assert len(held) <= MAX_CONNECTIONS, f"{len(held)} idle connections held open"
    assert len(held) >= MAX_CONNECTIONS - 10, f"only {len(held)} held: the limit is not what closed them"
    assert server_sockets <= MAX_CONNECTIONS + 8, f"the server holds {server_sockets} sockets"
    assert extra.status is None and extra.closed, f"a connection past the limit: {extra}"
    assert held_answers == [200] * 5
    assert rejected is not None and rejected >= len(socks) - len(held), rejected
    assert rss_held < IDLE_RSS_BOUND_MB and peak < IDLE_RSS_BOUND_MB


IDLE_TIMEOUT_MS = 2000


def test_idle_keep_alive_connections_are_closed_after_header_read_timeout(serve):
    """200 connections that never send a byte and 100 keep-alive connections
    left idle after one answered request: HEADER_READ_TIMEOUT_MS=2000 closes
    them all within timeout + slack."""
    srv = serve(HEADER_READ_TIMEOUT_MS=IDLE_TIMEOUT_MS, MAX_CONNECTIONS=MAX_CONNECTIONS)
    bound_s = IDLE_TIMEOUT_MS / 1000 + SLACK_S
    before, t0 = start_measure(srv)
    bare, _ = open_many(srv.port, 200, 5.0)
    kept, statuses = [], set()
    for _ in range(100):
        s = connect(srv.port, 3.0)
        kept.append(s)
        s.sendall(head("GET", "/health"))
        statuses.add(read_reply(s, 3.0).status)
    assert len(bare) == 200
    last_activity = time.monotonic()

    socks = bare + kept
    deadline = last_activity + bound_s
    while True:
        open_now = sum(is_open(s) for s in socks)
        if open_now == 0 or time.monotonic() > deadline:
            break
        time.sleep(0.05)
    all_closed_s = time.monotonic() - last_activity
    for s in socks:
        s.close()
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    open_gauge = metric(srv.port, "neuro_divergent_connections_open")
    after = rss_mb(srv.pid)
    record("3b idle keep-alive timeout",
           status=f"{open_now} open after {all_closed_s:.2f} s",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"all closed <= {bound_s:.0f} s after last use",
           note=f"200 bare + 100 keep-alive (answers {sorted(statuses, key=str)}); open gauge after "
                f"{open_gauge}; valid predict {predict_s * 1000:.0f} ms")
    assert statuses == {200}
    assert open_now == 0, f"{open_now}/300 idle connections still open {bound_s} s after last use"


# ------------------------------------------------------- 4. huge headers

HUGE_HEADERS_GROWTH_MB = 64  # hyper buffers at most ~400 kB of head per connection


def _head_pieces(raw: bytes, size: int = 64 * 1024):
    return (raw[i:i + size] for i in range(0, len(raw), size))


def test_huge_headers_are_refused_with_4xx_not_5xx(serve):
    """A 1 MB header, 1000 headers, a 1 MB request target, and 20 clients
    sending 1 MB heads at once: refused with a 4xx (hyper: 431, 414) or a
    close, never a 5xx, memory bounded; the service keeps answering."""
    srv = serve()
    before, t0 = start_measure(srv)
    abuses = {
        "1 MB header": head("GET", "/health", {"x-big": "a" * MIB}),
        "1000 headers": head("GET", "/health", [(f"x-h{i}", "v") for i in range(1000)]),
        "1 MB target": head("GET", "/health?" + "a" * MIB),
        "1 MB header on /predict": head("POST", PREDICT, {**JSON, "content-length": "2", "x-big": "a" * MIB}),
    }
    results = {}
    for name, raw in abuses.items():
        reply, _ = stream_request(srv.port, b"", _head_pieces(raw), timeout=5.0)
        results[name] = reply
    with cf.ThreadPoolExecutor(20) as pool:
        raw = abuses["1 MB header"]
        parallel = list(pool.map(lambda _: stream_request(srv.port, b"", _head_pieces(raw), timeout=5.0)[0],
                                 range(20)))
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    summary = {k: (r.status or "closed", round(r.elapsed, 3)) for k, r in results.items()}
    record("4 huge headers", status=", ".join(f"{k}: {v[0]}" for k, v in summary.items()),
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"4xx or close; peak < before + {HUGE_HEADERS_GROWTH_MB} MB",
           note=f"times {json.dumps({k: v[1] for k, v in summary.items()})}; 20 parallel 1 MB heads: "
                f"{sorted({r.status or 'closed' for r in parallel}, key=str)}; "
                f"valid predict {predict_s * 1000:.0f} ms")
    for name, r in [*results.items(), *(("parallel 1 MB header", r) for r in parallel)]:
        if r.status is None:
            assert r.closed, f"{name}: neither answered nor closed: {r}"
        else:
            assert 400 <= r.status < 500, f"{name}: {r}"
    assert results["1 MB header"].status == 431, str(results["1 MB header"])
    assert results["1000 headers"].status == 431, str(results["1000 headers"])
    assert peak < before + HUGE_HEADERS_GROWTH_MB


# ------------------------------------------------- 5. endless chunked body

CHUNKED_LIMIT = 1 * MIB
ENDLESS_BYTES = 20 * MIB
CHUNKED_GROWTH_MB = 48


def _chunks(total: int, size: int = 64 * 1024):
    frame = f"{size:x}\r\n".encode() + b" " * size + b"\r\n"
    for _ in range(total // size):
        yield frame


def test_endless_chunked_body_gets_413_past_max_body_bytes(serve):
    """A chunked body that would go on for 20 MB, MAX_BODY_BYTES=1 MiB: 413
    `body_too_large` once past the limit and the connection closed, long
    before 20 MB; a declared 20 MB Content-Length is refused before any body
    byte is read; 8 such clients at once stay within CHUNKED_GROWTH_MB."""
    srv = serve(MAX_BODY_BYTES=CHUNKED_LIMIT)
    before, t0 = start_measure(srv)
    chunked_head = head("POST", PREDICT, {**JSON, "transfer-encoding": "chunked"})
    reply, sent = stream_request(srv.port, chunked_head, _chunks(ENDLESS_BYTES), timeout=10.0,
                                 await_close=2.0)
    closed_after = reply.closed

    declared, declared_sent = stream_request(
        srv.port, head("POST", PREDICT, {**JSON, "content-length": str(ENDLESS_BYTES)}),
        (b" " * 65536 for _ in range(ENDLESS_BYTES // 65536)), timeout=10.0)
    with cf.ThreadPoolExecutor(8) as pool:
        parallel = list(pool.map(lambda _: stream_request(srv.port, chunked_head, _chunks(ENDLESS_BYTES),
                                                          timeout=10.0), range(8)))
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    record("5 endless chunked body", status=f"{reply.status} {reply.code()} after {reply.elapsed:.2f} s",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"413 before 20 MB sent; peak < before + {CHUNKED_GROWTH_MB} MB",
           note=f"{sent / MIB:.1f} MiB sent before the answer (limit 1 MiB; the rest sat in socket "
                f"buffers); closed after: {closed_after}; declared 20 MB Content-Length: "
                f"{declared.status} after {declared_sent / MIB:.1f} MiB; 8 parallel: "
                f"{sorted({r.status for r, _ in parallel}, key=str)}; valid predict {predict_s * 1000:.0f} ms")
    assert (reply.status, reply.code()) == (413, "body_too_large"), str(reply)
    assert sent < ENDLESS_BYTES, "the server read the whole 20 MB before answering"
    assert closed_after, "the connection stayed open after 413 on an unread chunked body"
    assert (declared.status, declared.code()) == (413, "body_too_large"), str(declared)
    assert declared_sent < ENDLESS_BYTES
    for r, s in parallel:
        assert (r.status, r.code()) == (413, "body_too_large") and s < ENDLESS_BYTES, str(r)
    assert peak < before + CHUNKED_GROWTH_MB


# ---------------------------------------------------- 6. deeply nested JSON

NESTING = 100_000
NESTED_GROWTH_MB = 32


def test_deeply_nested_json_is_malformed_json_fast(serve):
    """100 000 nested arrays/objects wherever they sit in the body: 400
    `malformed_json` (nesting deeper than 128 is not JSON the service takes;
    the Python reference says the same), fast, no stack overflow."""
    srv = serve()
    before, t0 = start_measure(srv)
    n = NESTING
    row = '{"unique_id": "s1", "ds": "2024-01-01", "y": 1.0'
    bodies = {
        "top-level [[[...]]]": "[" * n + "]" * n,
        "top-level [[[ unclosed": "[" * n,
        "df: [[[...]]]": '{"df": ' + "[" * n + "]" * n + "}",
        "cell: [[[...]]]": '{"df": [' + row + ', "x": ' + "[" * n + "]" * n + "}]}",
        "cell: {a:{a:...}}": '{"df": [' + row + ', "x": ' + '{"a": ' * n + "1" + "}" * n + "}]}",
        "top-level {a:{a:...}}": '{"a": ' * n + "1" + "}" * n,
        "extra key: [[[...]]]": '{"df": [' + row + '}], "zzz": ' + "[" * n + "]" * n + "}",
        "130 deep (just past 128)": '{"df": [' + row + ', "x": ' + "[" * 127 + "]" * 127 + "}]}",
    }
    results = {name: predict(srv.port, body.encode(), timeout=5.0) for name, body in bodies.items()}
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    got = {k: f"{r.status} {r.code()}" for k, r in results.items()}
    counts = Counter(got.values())
    record("6 deeply nested JSON", status=", ".join(f"{n}x {v}" for v, n in sorted(counts.items())),
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound=f"400 malformed_json each; peak < before + {NESTED_GROWTH_MB} MB",
           note=f"{json.dumps(got)}; slowest {max(r.elapsed for r in results.values()) * 1000:.0f} ms; "
                f"valid predict {predict_s * 1000:.0f} ms")
    for name, r in results.items():
        assert r.status is not None and r.status < 500, f"{name}: {r}"
    wrong = {k: v for k, v in got.items() if v != "400 malformed_json"}
    assert not wrong, f"nesting deeper than 128 must be 400 malformed_json (as the Python reference): {wrong}"
    assert peak < before + NESTED_GROWTH_MB


# ------------------------------------------------ 7. a million tiny series

SERIES = 1_000_000
BIG_BODY_LIMIT = 128 * MIB
# Peak RSS growth per request as a multiple of its body. Before max_series
# (default 20 000, 422 too_many_series) a 51 MB body of one-row series peaked
# at ~1.9 GB (~37x: 7 M output rows); now the request stops at the first
# series over the bound: measured ~6x.
PEAK_PER_BODY = 10
MILLION_CLIENT_TIMEOUT_S = 40.0  # a hang guard for the client, not a bound on the service
MAX_SERIES_DEFAULT = 20_000
# 20 000 one-row series (~1 MB) answered in full: 140 000 rows.
AT_LIMIT_PEAK_MB = 64  # measured ~36 MB


def million_series_body(n: int = SERIES) -> bytes:
    rows = [b'{"unique_id":"s%07d","ds":"2024-01-01","y":1.5}' % i for i in range(n)]
    return b'{"df":[' + b",".join(rows) + b"]}"


def test_a_million_tiny_series_at_the_default_limit_is_413(serve):
    """1 000 000 one-row series (~51 MB) at the default MAX_BODY_BYTES
    (8 MiB): 413 on the declared Content-Length without reading the body,
    and 413 after 8 MiB when the same body comes chunked."""
    srv = serve()
    body = million_series_body()
    before, t0 = start_measure(srv)
    declared, declared_sent = stream_request(
        srv.port, head("POST", PREDICT, {**JSON, "content-length": str(len(body))}),
        _head_pieces(body, 256 * 1024), timeout=10.0)
    chunked, chunked_sent = stream_request(
        srv.port, head("POST", PREDICT, {**JSON, "transfer-encoding": "chunked"}),
        (f"{len(p):x}\r\n".encode() + p + b"\r\n" for p in _head_pieces(body, 256 * 1024)), timeout=10.0)
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    record("7a 1M series, default limit", status=f"{declared.status} / chunked {chunked.status}",
           seconds=time.monotonic() - t0, rss_before=before, peak=peak, rss_after=after,
           bound="413; peak < before + 64 MB",
           note=f"body {len(body) / 1e6:.0f} MB; declared: answered after {declared.elapsed:.3f} s, "
                f"{declared_sent / MIB:.1f} MiB sent; chunked: after {chunked.elapsed:.3f} s, "
                f"{chunked_sent / MIB:.1f} MiB sent; valid predict {predict_s * 1000:.0f} ms")
    assert (declared.status, declared.code()) == (413, "body_too_large"), str(declared)
    assert (chunked.status, chunked.code()) == (413, "body_too_large"), str(chunked)
    assert peak < before + 64


def test_a_million_tiny_series_with_a_raised_limit_is_bounded(serve):
    """The same 51 MB body with MAX_BODY_BYTES=128 MiB: more series than
    max_series, so 422 too_many_series, found while grouping (before the
    rest of the body is grouped). Time and peak RSS are measured and bounded."""
    srv = serve(MAX_BODY_BYTES=BIG_BODY_LIMIT)
    body = million_series_body()
    before, t0 = start_measure(srv)
    r = predict(srv.port, body, timeout=MILLION_CLIENT_TIMEOUT_S, keep_body=4096)
    peak = peak_mb(srv.pid)
    rss_end = rss_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    body_mb = len(body) / MIB
    record("7b 1M series, 128 MiB limit", status=f"{r.status} {r.code() or ''}".strip(),
           seconds=r.elapsed, rss_before=before, peak=peak, rss_after=after,
           bound=f"422 too_many_series; peak < before + {PEAK_PER_BODY}x body",
           note=f"body {body_mb:.0f} MiB, answer {r.body_len / MIB:.0f} MiB; peak/body "
                f"{(peak - before) / body_mb:.1f}x (bound {PEAK_PER_BODY}x); RSS right after {rss_end:.0f} MB; "
                f"valid predict {predict_s * 1000:.0f} ms")
    assert (r.status, r.code()) == (422, "too_many_series"), str(r)
    assert peak - before < PEAK_PER_BODY * body_mb, f"peak RSS {peak:.0f} MB for a {body_mb:.0f} MiB body"


def test_series_up_to_the_limit_are_answered_with_bounded_memory(serve):
    """max_series one-row series (the default 20 000, ~1 MB body): 200 with
    every row (one-row histories are left-padded as NeuralForecast pads
    them); one more series is 422 too_many_series."""
    srv = serve()
    body = million_series_body(MAX_SERIES_DEFAULT)
    before, t0 = start_measure(srv)
    r = predict(srv.port, body, timeout=30.0)
    peak = peak_mb(srv.pid)
    over = predict(srv.port, million_series_body(MAX_SERIES_DEFAULT + 1), timeout=30.0, keep_body=4096)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    record("7d 20k series (max_series)", status=f"{r.status}; +1 series: {over.status} {over.code() or ''}",
           seconds=r.elapsed, rss_before=before, peak=peak, rss_after=after,
           bound=f"200; peak < before + {AT_LIMIT_PEAK_MB} MB",
           note=f"body {len(body) / MIB:.2f} MiB, answer {r.body_len / MIB:.1f} MiB in {r.elapsed:.2f} s; "
                f"valid predict {predict_s * 1000:.0f} ms")
    assert r.status == 200, str(r)
    assert r.body_len == int(r.headers["content-length"])
    # Every series is answered, h rows each, in order, with a finite forecast.
    answer = r.json()
    assert isinstance(answer, dict), str(r)
    rows = answer["predictions"]
    h = len(rows) // MAX_SERIES_DEFAULT
    assert h > 0 and len(rows) == MAX_SERIES_DEFAULT * h, len(rows)
    ids = [row["unique_id"] for row in rows[::h]]
    assert ids == [f"s{i:07d}" for i in range(MAX_SERIES_DEFAULT)]
    assert all(row["unique_id"] == rows[k - k % h]["unique_id"] for k, row in enumerate(rows))
    forecasts = [row[col] for row in rows for col in row if col not in ("unique_id", "ds")]
    assert len(forecasts) == len(rows) and all(math.isfinite(v) for v in forecasts)
    assert (over.status, over.code()) == (422, "too_many_series"), str(over)
    assert peak < before + AT_LIMIT_PEAK_MB


DEFAULT_LIMIT_SERIES = 164_000  # ~7.98 MiB: just under the default 8 MiB limit
PARALLEL_FULL_BODIES = 4


def test_tiny_series_bodies_at_the_default_limit_in_parallel(serve):
    """No configuration change: 4 clients each send a body just under the
    default 8 MiB made of 164 000 one-row series: all 422 too_many_series,
    peak RSS growth per request under PEAK_PER_BODY x its body (it was ~35x,
    answering 1.1 M rows each, before max_series)."""
    srv = serve()
    body = million_series_body(DEFAULT_LIMIT_SERIES)
    before, t0 = start_measure(srv)
    with cf.ThreadPoolExecutor(PARALLEL_FULL_BODIES) as pool:
        replies = list(pool.map(lambda _: predict(srv.port, body, timeout=40.0, keep_body=256),
                                range(PARALLEL_FULL_BODIES)))
    peak = peak_mb(srv.pid)
    predict_s = assert_predict_ok(srv.port)
    after = rss_mb(srv.pid)
    per_request = (peak - before) / PARALLEL_FULL_BODIES
    record(f"7c {PARALLEL_FULL_BODIES}x 164k series, default limit",
           status=",".join(str(r.status) for r in replies), seconds=time.monotonic() - t0,
           rss_before=before, peak=peak, rss_after=after,
           bound=f"422; peak < before + {PARALLEL_FULL_BODIES} x {PEAK_PER_BODY}x body",
           note=f"body {len(body) / MIB:.2f} MiB each; answers {replies[0].body_len / MIB:.0f} MiB each in "
                f"{min(r.elapsed for r in replies):.1f}-{max(r.elapsed for r in replies):.1f} s; "
                f"peak growth per request {per_request:.0f} MB ({per_request / (len(body) / MIB):.0f}x body); "
                f"valid predict {predict_s * 1000:.0f} ms")
    for r in replies:
        assert (r.status, r.code()) == (422, "too_many_series"), str(r)
    assert per_request < PEAK_PER_BODY * len(body) / MIB
