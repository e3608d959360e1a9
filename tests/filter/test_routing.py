"""Split, stickiness, override and the routing header, in a real Envoy."""

import harness
import httpx
from harness import PREDICT, served_by


def test_split_ratio_without_key(filtered_envoy, upstreams):
    envoy = filtered_envoy(rust_weight_bp=2500)
    seen = served_by(envoy, 400, fresh_connections=True)
    assert abs(seen["rust"] / 400 - 0.25) <= 0.03, seen
    py, rs = upstreams
    assert (py.stats()["requests"], rs.stats()["requests"]) == (seen["python"], seen["rust"])
    m = envoy.snapshot()
    assert m("nd_filter_requests_total", backend="rust", outcome="success") == seen["rust"]
    assert m("nd_filter_requests_total", backend="python", outcome="success") == seen["python"]


def test_split_extremes(filtered_envoy):
    assert served_by(filtered_envoy(rust_weight_bp=0), 50) == {"python": 50}
    assert served_by(filtered_envoy(rust_weight_bp=10000), 50) == {"rust": 50}


def test_sticky_key_lands_on_one_backend_and_only_moves_to_rust(filtered_envoy, start_envoy, upstreams):
    keys = [f"user-{i}" for i in range(200)]

    def assignment(envoy):
        out = {}
        with httpx.Client(timeout=5) as client:
            for k in keys:
                got = {client.post(envoy.url + "/predict", json=PREDICT,
                                   headers={"x-user-id": k, "connection": "close"}).headers["x-upstream"]
                       for _ in range(2)}
                assert len(got) == 1, f"key {k} was served by both backends: {got}"
                out[k] = got.pop()
        return out

    low = assignment(filtered_envoy(rust_weight_bp=2000, sticky_header="x-user-id"))
    high = assignment(filtered_envoy(rust_weight_bp=5000, sticky_header="x-user-id"))
    share_low = sum(v == "rust" for v in low.values()) / len(keys)
    share_high = sum(v == "rust" for v in high.values()) / len(keys)
    assert 0.12 <= share_low <= 0.28 and 0.40 <= share_high <= 0.60, (share_low, share_high)
    moved_back = [k for k in keys if low[k] == "rust" and high[k] == "python"]
    assert moved_back == [], "raising the weight moved keys back to python"
    assert any(low[k] == "python" and high[k] == "rust" for k in keys)


def test_requests_without_the_sticky_header_still_split(filtered_envoy):
    seen = served_by(filtered_envoy(rust_weight_bp=5000, sticky_header="x-user-id"), 100)
    assert 45 <= seen["rust"] <= 55, seen


def test_override_header_only_when_enabled(filtered_envoy):
    off = filtered_envoy(rust_weight_bp=0)
    assert served_by(off, 20, headers={"x-nd-override": "rust"}) == {"python": 20}
    on = filtered_envoy(rust_weight_bp=0, override={"enabled": True})
    assert served_by(on, 20, headers={"x-nd-override": "rust"}) == {"rust": 20}
    assert served_by(on, 20, headers={"x-nd-override": "RUST"}) == {"rust": 20}
    assert served_by(on, 10, headers={"x-nd-override": "go"}) == {"python": 10}, "invalid values are ignored"
    # The override beats stickiness.
    sticky = filtered_envoy(rust_weight_bp=10000, sticky_header="x-user-id", override={"enabled": True})
    assert served_by(sticky, 10, headers={"x-user-id": "u1", "x-nd-override": "python"}) == {"python": 10}


def test_forged_routing_header_is_overwritten(filtered_envoy, upstreams):
    py, rs = upstreams
    envoy = filtered_envoy(rust_weight_bp=0)
    assert served_by(envoy, 30, headers={"x-nd-backend": "rust"}) == {"python": 30}
    assert py.stats()["routing"] == {"python": 30}, "the upstream saw the filter's value"
    envoy = filtered_envoy(rust_weight_bp=10000)
    assert served_by(envoy, 30, headers={"x-nd-backend": "python"}) == {"rust": 30}
    assert rs.stats()["routing"] == {"rust": 30}


def test_custom_routing_header_name(upstreams, start_envoy):
    py, rs = upstreams
    cfg = harness.filter_config(py, rs, rust_weight_bp=10000, routing_header="x-route-to")
    boot = harness.bootstrap([py, rs], [harness.wasm_filter(cfg)])
    for r in boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"][
            "route_config"]["virtual_hosts"][0]["routes"]:
        for h in r["match"].get("headers", []):
            h["name"] = "x-route-to"
    assert served_by(start_envoy(boot), 10) == {"rust": 10}
