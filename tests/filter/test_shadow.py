"""Shadow mirroring with numeric comparison, in a real Envoy."""

import concurrent.futures
import json
import socket
import time

import httpx
from harness import PREDICT, served_by


def mirror(**kw):
    return {"share_bp": 10000, **kw}


def results(envoy, target="rust"):
    return {r: envoy.metric("nd_filter_shadow_results_total", target=target, result=r)
            for r in ("match", "mismatch", "error")}


def wait_results(envoy, total, target="rust"):
    return envoy.wait_for(lambda: sum(results(envoy, target).values()) >= total and results(envoy, target),
                          what=f"{total} shadow results")


def test_matching_shadow(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror())
    assert served_by(envoy, 20, fresh_connections=True) == {"python": 20}
    assert wait_results(envoy, 20) == {"match": 20, "mismatch": 0, "error": 0}
    m = envoy.snapshot()
    assert m("nd_filter_shadow_sent_total", target="rust") == 20
    stats = rs.stats()
    assert (stats["requests"], stats["shadow"]) == (20, 20)
    assert stats["last"]["x-nd-backend"] == "rust" and stats["last"]["x-nd-shadow"] == "1"
    assert stats["last"]["host"] == f"{rs.host}:{rs.port}"
    # Divergence histogram: 20 samples of 0 ppm (histograms flush every second).
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_divergence_ppm_count", target="rust") == 20,
                   what="histogram flush")
    m = envoy.snapshot()
    assert m("nd_filter_shadow_divergence_ppm_sum", target="rust") == 0
    assert m("nd_filter_shadow_in_flight") == 0


def test_credentials_are_stripped_from_shadow_requests(filtered_envoy, upstreams):
    py, rs = upstreams
    secret = {"authorization": "Bearer s3cret", "cookie": "session=s3cret",
              "proxy-authorization": "Basic s3cret", "x-api-key": "s3cret", "x-tenant": "t1"}
    # Defaults: Authorization, Cookie, Proxy-Authorization.
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror())
    assert served_by(envoy, 2, headers=secret) == {"python": 2}
    assert wait_results(envoy, 2)["match"] == 2
    primary, shadow = py.stats()["last"], rs.stats()["last"]
    assert primary["authorization"] == "Bearer s3cret" and primary["cookie"] == "session=s3cret"
    assert shadow["x-nd-shadow"] == "1" and shadow["x-tenant"] == "t1"
    for h in ("authorization", "cookie", "proxy-authorization"):
        assert h not in shadow, (h, shadow)
    assert shadow["x-api-key"] == "s3cret"  # not in the default list
    # A configured list replaces the default, in both directions.
    envoy = filtered_envoy(rust_weight_bp=10000, shadow=mirror(strip_headers=["X-Api-Key", "cookie"]))
    assert served_by(envoy, 2, headers=secret) == {"rust": 2}
    assert wait_results(envoy, 2, target="python")["match"] == 2
    shadow = py.stats()["last"]
    assert shadow["x-nd-shadow"] == "1"
    assert "x-api-key" not in shadow and "cookie" not in shadow
    assert shadow["authorization"] == "Bearer s3cret"


def test_diverging_shadow_is_a_mismatch_with_request_id_and_field(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="perturb", factor=0.01)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(rel_tolerance=1e-3))
    served_by(envoy, 5, headers=lambda i: {"x-request-id": f"req-diverge-{i}"})
    assert wait_results(envoy, 5) == {"match": 0, "mismatch": 5, "error": 0}
    log = envoy.log()
    for i in range(5):
        assert (f"shadow mismatch request_id=req-diverge-{i} primary=python shadow=rust "
                "field=predictions[unique_id=s1,ds=2024-02-29T00:00:00].MLP") in log
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_divergence_ppm_count", target="rust") == 5,
                   what="histogram flush")
    # 1 % relative difference = ~9901 ppm, in the (5000, 10000] bucket.
    buckets = {le: v for (n, ls), v in envoy.metrics().items() if n == "nd_filter_shadow_divergence_ppm_bucket"
               for k, le in ls if k == "le" and ("target", "rust") in ls}
    assert buckets["5000"] == 0 and buckets["10000"] == 5


# A bundle fitted with id_col="airline", time_col="month" (tests/fixtures
# bundle mlp_air_columns): nf.predict writes those two columns first.
AIR_COLUMNS = {"model": "mlp_air_columns", "predictions": [
    {"airline": "a1", "month": "1961-01-31T00:00:00", "MLP": 482.4868},
    {"airline": "a1", "month": "1961-02-28T00:00:00", "MLP": 493.447},
    {"airline": "a2", "month": "1961-01-31T00:00:00", "MLP": 655.1},
]}


def test_custom_id_and_time_columns_are_compared(filtered_envoy, upstreams):
    py, rs = upstreams
    for u in upstreams:
        u.control(mode="ok", body=AIR_COLUMNS)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(rel_tolerance=1e-3))
    assert served_by(envoy, 5) == {"python": 5}
    assert wait_results(envoy, 5) == {"match": 5, "mismatch": 0, "error": 0}
    rs.control(mode="perturb", factor=0.01, body=AIR_COLUMNS)
    served_by(envoy, 3, headers=lambda i: {"x-request-id": f"req-air-{i}"})
    assert wait_results(envoy, 8) == {"match": 5, "mismatch": 3, "error": 0}
    assert ("shadow mismatch request_id=req-air-0 primary=python shadow=rust "
            "field=predictions[airline=a1,month=1961-01-31T00:00:00].MLP") in envoy.log()


def test_small_differences_within_tolerance_match(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="perturb", factor=1e-6)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(rel_tolerance=1e-4))
    served_by(envoy, 5)
    assert wait_results(envoy, 5) == {"match": 5, "mismatch": 0, "error": 0}


def test_mirrors_rust_to_python_too(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=10000, shadow=mirror())
    assert served_by(envoy, 10) == {"rust": 10}
    assert wait_results(envoy, 10, target="python")["match"] == 10
    assert (py.stats()["shadow"], rs.stats()["shadow"]) == (10, 0)


def test_direction_and_share(filtered_envoy, upstreams):
    py, rs = upstreams
    one_way = filtered_envoy(rust_weight_bp=10000, shadow=mirror(direction="python_to_rust"))
    served_by(one_way, 10)
    time.sleep(0.3)
    assert py.stats()["shadow"] == 0
    quarter = filtered_envoy(rust_weight_bp=0, shadow=mirror(share_bp=2500))
    served_by(quarter, 100)

    def settled():
        m = quarter.snapshot()
        sent = m("nd_filter_shadow_sent_total", target="rust")
        done = sum(m("nd_filter_shadow_results_total", target="rust", result=r) for r in ("match", "mismatch", "error"))
        return sent if sent and done == sent else None

    assert 22 <= quarter.wait_for(settled, what="all sampled shadows compared") <= 28


def test_status_difference_is_a_mismatch(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror())
    assert served_by(envoy, 3) == {"python": 3}
    assert wait_results(envoy, 3)["mismatch"] == 3
    assert "field=status: primary 200 shadow 500" in envoy.log()


def test_slow_shadow_never_delays_the_client_and_times_out_as_error(filtered_envoy, upstreams):
    """Each answer arrives while its own shadow is still in flight (the shadow sleeps 3 s and
    times out after 1 s): the client never waits for the shadow. Asserted on the filter's
    in-flight gauge, not on a clock."""
    py, rs = upstreams
    rs.control(mode="sleep", delay=3.0)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(timeout_ms=1000))
    direct = httpx.post(py.url + "/predict", json=PREDICT).content
    in_flight = []
    with httpx.Client(timeout=10) as c:
        for i in range(3):
            envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_in_flight") == 0 or None,
                           what="the previous shadow to end")
            r = c.post(envoy.url + "/predict", json=PREDICT)
            in_flight.append(envoy.metric("nd_filter_shadow_in_flight"))
            assert r.content == direct and r.headers["x-upstream"] == "python"
            wait_results(envoy, i + 1)
    assert in_flight == [1, 1, 1], f"an answer waited for its shadow: in flight at the answers {in_flight}"
    assert wait_results(envoy, 3) == {"match": 0, "mismatch": 0, "error": 3}


def test_unknown_shadow_cluster_is_a_shadow_error(upstreams, start_envoy):
    import harness

    py, rs = upstreams
    cfg = harness.filter_config(py, rs, rust_weight_bp=0, shadow=mirror())
    cfg["backends"]["rust"]["cluster"] = "no-such-cluster"
    envoy = start_envoy(harness.bootstrap([py, rs], [harness.wasm_filter(cfg)]))
    assert served_by(envoy, 5) == {"python": 5}
    assert wait_results(envoy, 5) == {"match": 0, "mismatch": 0, "error": 5}
    assert 'shadow call to cluster "no-such-cluster" failed' in envoy.log()


def test_bodies_over_the_cap_are_not_mirrored(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(max_body_bytes=1000))
    big = {"df": [{"unique_id": f"s{i}", "ds": "2024-01-31", "y": 1.0} for i in range(100)]}
    with httpx.Client(timeout=5) as c:
        for _ in range(3):
            assert c.post(envoy.url + "/predict", json=big).status_code == 200
    # A response over the cap: the comparison is dropped after the shadow went out.
    py.control(body={"model": "air", "predictions": [
        {"unique_id": f"s{i}", "ds": i, "MLP": 1.0} for i in range(100)]})
    served_by(envoy, 2)
    skipped = envoy.wait_for(
        lambda: envoy.metric("nd_filter_shadow_skipped_total", reason="body_too_large") >= 5 and
        envoy.metric("nd_filter_shadow_skipped_total", reason="body_too_large"), what="skips")
    assert skipped == 5
    m = envoy.snapshot()
    assert m("nd_filter_shadow_sent_total", target="rust") == 2
    assert sum(results(envoy).values()) == 0
    assert envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_in_flight") == 0 or None, what="cleanup") is True


def test_in_flight_comparisons_are_bounded(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="sleep", delay=2.0)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(max_in_flight=2, timeout_ms=4000))

    def one(_):
        with httpx.Client(timeout=5) as c:
            return c.post(envoy.url + "/predict", json=PREDICT).status_code

    with concurrent.futures.ThreadPoolExecutor(6) as pool:
        assert list(pool.map(one, range(6))) == [200] * 6
    m = envoy.snapshot()
    assert m("nd_filter_shadow_skipped_total", reason="in_flight_limit") == 4
    assert m("nd_filter_shadow_sent_total", target="rust") == 2
    assert wait_results(envoy, 2)["match"] == 2
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_in_flight") == 0, what="in-flight back to 0")


def test_client_gone_before_the_primary_answers_is_cleaned_up(filtered_envoy, upstreams):
    py, rs = upstreams
    py.control(mode="sleep", delay=1.0)
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror(), route_timeout="5s")
    for _ in range(2):
        try:
            httpx.post(envoy.url + "/predict", json=PREDICT, timeout=0.2)
        except httpx.TimeoutException:
            pass
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_skipped_total", reason="abandoned") == 2,
                   what="abandoned comparisons")
    m = envoy.snapshot()
    assert m("nd_filter_shadow_in_flight") == 0
    assert m("nd_filter_requests_total", backend="python", outcome="aborted") == 2
    assert sum(results(envoy).values()) == 0


def test_primary_answering_before_the_body_arrives_is_a_counted_skip(filtered_envoy, upstreams):
    py, rs = upstreams
    py.control(mode="early")
    envoy = filtered_envoy(rust_weight_bp=0, shadow=mirror())
    body = json.dumps(PREDICT).encode()
    host, port = envoy.url.removeprefix("http://").rsplit(":", 1)
    with socket.create_connection((host, int(port)), timeout=5) as s:
        s.sendall(b"POST /predict HTTP/1.1\r\nhost: x\r\ncontent-type: application/json\r\n"
                  b"content-length: %d\r\n\r\n" % len(body))
        assert s.recv(64).startswith(b"HTTP/1.1 400"), "the primary answers before the body is sent"
        try:
            s.sendall(body)
        except OSError:
            pass  # Envoy may already have closed the stream
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_skipped_total", reason="answered_early") == 1,
                   what="the answered_early skip")
    m = envoy.snapshot()
    assert m("nd_filter_shadow_sent_total", target="rust") == 0
    assert m("nd_filter_shadow_in_flight") == 0
    assert rs.stats()["requests"] == 0 and py.stats()["requests"] == 1


def test_no_shadow_to_an_open_circuit_or_from_a_fallback(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=0, override={"enabled": True}, shadow=mirror(),
                           breaker={"failure_threshold": 2, "recovery_ms": 60000})
    # Rust primaries (override) fail twice: rust's circuit opens. Both were mirrored to python.
    served_by(envoy, 2, headers={"x-nd-override": "rust"}, expect_status=500)
    time.sleep(0.3)  # every worker's breaker cache has seen it
    # A fallback is not mirrored (its other side is the open circuit).
    assert served_by(envoy, 2, headers={"x-nd-override": "rust"}) == {"python": 2}
    # Python primaries are not mirrored to the open circuit.
    assert served_by(envoy, 3) == {"python": 3}
    m = envoy.snapshot()
    assert rs.stats()["requests"] == 2
    assert m("nd_filter_shadow_sent_total", target="rust") == 0
    assert m("nd_filter_shadow_sent_total", target="python") == 2
    assert m("nd_filter_shadow_skipped_total", reason="breaker_open") == 3
