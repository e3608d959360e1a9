"""Circuit breaking with fallback, in a real Envoy with two workers."""

import time

import harness
import httpx
from harness import PREDICT, served_by


def post(envoy, client, **headers):
    return client.post(envoy.url + "/predict", json=PREDICT, headers=headers)


def breaker(threshold=3, recovery_ms=60000, **kw):
    return {"failure_threshold": threshold, "recovery_ms": recovery_ms, **kw}


def test_opens_after_n_failures_and_falls_back(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=3))
    with httpx.Client(timeout=5) as c:
        for _ in range(3):
            r = post(envoy, c)
            assert (r.status_code, r.headers["x-upstream"]) == (500, "rust")
            assert "x-nd-fallback" not in r.headers
        for _ in range(5):
            r = post(envoy, c)
            assert (r.status_code, r.headers["x-upstream"]) == (200, "python")
            assert r.headers["x-nd-fallback"] == "rust->python"
    assert rs.stats()["requests"] == 3
    m = envoy.snapshot()
    assert m("nd_filter_requests_total", backend="rust", outcome="error") == 3
    assert m("nd_filter_requests_total", backend="python", outcome="success") == 5
    assert m("nd_filter_fallbacks_total", **{"from": "rust", "to": "python"}) == 5
    assert m("nd_filter_breaker_transitions_total", backend="rust", to="open") == 1
    assert m("nd_filter_breaker_state", backend="rust") == 2
    assert m("nd_filter_breaker_state", backend="python") == 0
    assert "circuit for rust closed -> open" in envoy.log()


def test_a_success_resets_the_consecutive_count(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=3))
    with httpx.Client(timeout=5) as c:
        for _ in range(3):
            rs.control(mode="status", status=503)
            assert post(envoy, c).status_code == 503
            assert post(envoy, c).status_code == 503
            rs.control(mode="ok")
            assert post(envoy, c).headers["x-upstream"] == "rust"
    m = envoy.snapshot()
    assert m("nd_filter_breaker_transitions_total", backend="rust", to="open") == 0


def test_state_is_shared_across_workers(filtered_envoy, upstreams):
    """Failures on fresh connections land on both workers; once open, every
    worker falls back (per-worker state would keep sending some to rust).
    A worker that did not fail itself sees the change at its next breaker
    cache refresh (200 ms)."""
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=4))
    assert served_by(envoy, 4, fresh_connections=True, expect_status=500) == {"rust": 4}
    time.sleep(0.3)
    assert served_by(envoy, 40, fresh_connections=True) == {"python": 40}
    assert rs.stats()["requests"] == 4
    # One circuit (one shared-data key), opened once.
    m = envoy.snapshot()
    assert m("nd_filter_breaker_transitions_total", backend="rust", to="open") == 1


def test_resets_and_timeouts_count_as_failures(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=4), route_timeout="0.3s")
    with httpx.Client(timeout=5) as c:
        rs.control(mode="close")
        assert [post(envoy, c).status_code for _ in range(2)] == [503, 503]
        rs.control(mode="sleep", delay=1.0)
        assert [post(envoy, c).status_code for _ in range(2)] == [504, 504]
        rs.control(mode="ok")
        r = post(envoy, c)
        assert (r.headers["x-upstream"], r.headers["x-nd-fallback"]) == ("python", "rust->python")
    m = envoy.snapshot()
    assert m("nd_filter_requests_total", backend="rust", outcome="error") == 4


def test_dead_backend_opens_and_falls_back(upstreams, start_envoy, workdir):
    py, _ = upstreams
    doomed = harness.Upstream("rust", workdir)
    try:
        cfg = harness.filter_config(py, doomed, rust_weight_bp=10000, breaker=breaker(threshold=2))
        envoy = start_envoy(harness.bootstrap([py, doomed], [harness.wasm_filter(cfg)]))
        assert served_by(envoy, 3) == {"rust": 3}
    finally:
        doomed.stop()
    with httpx.Client(timeout=5) as c:
        assert [post(envoy, c).status_code for _ in range(2)] == [503, 503]  # connection refused
        r = post(envoy, c)
        assert (r.status_code, r.headers["x-upstream"], r.headers["x-nd-fallback"]) == (200, "python", "rust->python")


def test_half_open_probe_recovers(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=2, recovery_ms=1000))
    with httpx.Client(timeout=5) as c:
        assert [post(envoy, c).status_code for _ in range(2)] == [500, 500]
        assert post(envoy, c).headers["x-upstream"] == "python"
        # Probe fails: open again, with a new recovery time.
        time.sleep(1.1)
        r = post(envoy, c)
        assert (r.status_code, r.headers["x-upstream"]) == (500, "rust")
        assert post(envoy, c).headers["x-upstream"] == "python"
        # Backend healthy again: the next probe closes the circuit.
        rs.control(mode="ok")
        assert post(envoy, c).headers["x-upstream"] == "python", "still open before recovery"
        time.sleep(1.1)
        r = post(envoy, c)
        assert (r.status_code, r.headers["x-upstream"]) == (200, "rust")
        assert "x-nd-fallback" not in r.headers
    assert served_by(envoy, 20, fresh_connections=True) == {"rust": 20}
    m = envoy.snapshot()
    to = [m("nd_filter_breaker_transitions_total", backend="rust", to=s) for s in ("open", "half_open", "closed")]
    assert to == [2, 2, 1]
    assert m("nd_filter_breaker_state", backend="rust") == 0


def test_half_open_admits_limited_probes(filtered_envoy, upstreams):
    """While the probe is in flight, other requests still fall back."""
    import concurrent.futures

    py, rs = upstreams
    rs.control(mode="status", status=500)
    # A probe out for longer than recovery_ms counts as lost and frees its slot:
    # the other requests must all be decided within recovery_ms of the probe.
    envoy = filtered_envoy(rust_weight_bp=10000, route_timeout="5s",
                           breaker=breaker(threshold=1, recovery_ms=1500, half_open_max_probes=1))
    with httpx.Client(timeout=5) as c:
        assert post(envoy, c).status_code == 500
    time.sleep(1.6)
    rs.control(mode="sleep", delay=3.0)

    def one(_):
        with httpx.Client(timeout=5) as c:
            return post(envoy, c).headers["x-upstream"]

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        first = pool.submit(one, 0)
        # The probe is out once rust has it (1 failure + this probe).
        envoy.wait_for(lambda: rs.stats()["requests"] == 2, what="the probe at rust")
        rest = list(pool.map(one, range(5)))
        assert not first.done(), "the probe was still in flight while the others were decided"
    assert first.result() == "rust"
    assert rest == ["python"] * 5


def test_both_open_fails_open(filtered_envoy, upstreams):
    py, rs = upstreams
    for u in upstreams:
        u.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=2))
    with httpx.Client(timeout=5) as c:
        assert [post(envoy, c).status_code for _ in range(2)] == [500, 500]  # rust opens
        assert [post(envoy, c).headers["x-upstream"] for _ in range(2)] == ["python", "python"]  # python opens
        r = post(envoy, c)
        assert (r.status_code, r.headers["x-upstream"]) == (500, "rust"), "fail_open: the split's choice"
    m = envoy.snapshot()
    assert m("nd_filter_both_open_total", action="fail_open") == 1


def test_both_open_rejects_when_configured(filtered_envoy, upstreams):
    for u in upstreams:
        u.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=2, both_open="reject"))
    with httpx.Client(timeout=5) as c:
        for _ in range(4):
            post(envoy, c)
        r = post(envoy, c)
        assert r.status_code == 503
        assert r.json()["error"]["code"] == "not_ready"
        assert r.headers["x-nd-fallback"] == "rust->none"
        assert "x-upstream" not in r.headers
    m = envoy.snapshot()
    assert m("nd_filter_both_open_total", action="reject") == 1
    assert m("nd_filter_requests_total", backend="rust", outcome="rejected") == 1


def test_4xx_is_not_a_failure(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=422)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker=breaker(threshold=2))
    assert served_by(envoy, 5, expect_status=422) == {"rust": 5}
    m = envoy.snapshot()
    assert m("nd_filter_requests_total", backend="rust", outcome="success") == 5
