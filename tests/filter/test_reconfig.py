"""Live reconfiguration: Envoy takes a new plugin configuration from a
watched ECDS file (atomic rename) without a restart; breaker state survives."""

import time

import harness
import httpx
from harness import served_by


def ecds_envoy(start_envoy, workdir, py, rs, **overrides):
    path = workdir / f"nd_filter-{time.monotonic_ns()}.ecds.json"
    cfg = harness.filter_config(py, rs, **overrides)
    harness.write_ecds(path, cfg, version=1)
    envoy = start_envoy(harness.bootstrap([py, rs], [harness.ecds_filter(path)]))
    return envoy, path, cfg


def reconfigure(envoy, path, cfg, version):
    """Writes a new config; waits until Envoy reports the update accepted or rejected."""
    def counters():
        s = httpx.get(envoy.admin + "/stats?format=json&filter=extension_config_discovery", timeout=5).json()
        return {x["name"].rsplit(".", 1)[-1]: x.get("value", 0) for x in s["stats"] if "name" in x}

    before = counters()
    harness.write_ecds(path, cfg, version)
    return envoy.wait_for(
        lambda: (c := counters()) and (c.get("config_reload", 0) > before.get("config_reload", 0)
                                       or c.get("config_fail", 0) > before.get("config_fail", 0)) and c,
        what="ECDS update")


def test_new_weight_applies_without_restart(upstreams, start_envoy, workdir):
    py, rs = upstreams
    envoy, path, cfg = ecds_envoy(start_envoy, workdir, py, rs, rust_weight_bp=0)
    pid = envoy.proc.pid
    with httpx.Client(timeout=5) as kept:
        assert kept.post(envoy.url + "/predict", json=harness.PREDICT).headers["x-upstream"] == "python"
        assert served_by(envoy, 20, fresh_connections=True) == {"python": 20}
        m = envoy.snapshot()
        assert m("nd_filter_rust_weight_bp") == 0
        reconfigure(envoy, path, {**cfg, "rust_weight_bp": 10000}, version=2)
        assert served_by(envoy, 20, fresh_connections=True) == {"rust": 20}
        # Also the next request on a connection opened before the update.
        assert kept.post(envoy.url + "/predict", json=harness.PREDICT).headers["x-upstream"] == "rust"
    reconfigure(envoy, path, {**cfg, "rust_weight_bp": 5000}, version=3)
    seen = served_by(envoy, 100, fresh_connections=True)
    assert 45 <= seen["rust"] <= 55, seen
    assert envoy.proc.pid == pid and envoy.proc.alive(), "same Envoy process"
    assert envoy.snapshot()("nd_filter_rust_weight_bp") == 5000
    uptime = httpx.get(envoy.admin + "/server_info", timeout=5).json()["command_line_options"]["restart_epoch"]
    assert uptime == 0


def test_sticky_keys_only_move_to_rust_when_the_weight_rises_live(upstreams, start_envoy, workdir):
    py, rs = upstreams
    envoy, path, cfg = ecds_envoy(start_envoy, workdir, py, rs, rust_weight_bp=2000, sticky_header="x-user-id")
    keys = [f"user-{i}" for i in range(100)]

    def assignment():
        with httpx.Client(timeout=5) as c:
            return {k: c.post(envoy.url + "/predict", json=harness.PREDICT,
                              headers={"x-user-id": k, "connection": "close"}).headers["x-upstream"] for k in keys}

    low = assignment()
    reconfigure(envoy, path, {**cfg, "rust_weight_bp": 6000}, version=2)
    high = assignment()
    assert not [k for k in keys if low[k] == "rust" and high[k] == "python"]
    assert sum(v == "rust" for v in high.values()) > sum(v == "rust" for v in low.values())


def test_breaker_state_survives_reconfiguration(upstreams, start_envoy, workdir):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy, path, cfg = ecds_envoy(start_envoy, workdir, py, rs, rust_weight_bp=10000,
                                  breaker={"failure_threshold": 2, "recovery_ms": 60000})
    assert served_by(envoy, 2, expect_status=500) == {"rust": 2}
    assert served_by(envoy, 2) == {"python": 2}
    reconfigure(envoy, path, {**cfg, "rust_weight_bp": 9999}, version=2)
    with httpx.Client(timeout=5) as c:
        r = c.post(envoy.url + "/predict", json=harness.PREDICT, headers={"connection": "close"})
    assert (r.headers["x-upstream"], r.headers.get("x-nd-fallback")) == ("python", "rust->python")
    m = envoy.snapshot()
    assert m("nd_filter_breaker_state", backend="rust") == 2
    assert rs.stats()["requests"] == 2


def test_invalid_configuration_is_refused_and_the_old_one_keeps_serving(upstreams, start_envoy, workdir):
    py, rs = upstreams
    envoy, path, cfg = ecds_envoy(start_envoy, workdir, py, rs, rust_weight_bp=10000)
    counters = reconfigure(envoy, path, {**cfg, "rust_weight_bp": 20000}, version=2)
    assert counters.get("config_fail", 0) >= 1
    assert "nd-filter: refusing plugin configuration: rust_weight_bp: 20000 is outside 0..=10000" in envoy.log()
    assert served_by(envoy, 10, fresh_connections=True) == {"rust": 10}
    counters = reconfigure(envoy, path, {**cfg, "shadow": {"shara_bp": 1}}, version=3)
    assert "unknown field `shara_bp` in shadow" in envoy.log()
    assert served_by(envoy, 10, fresh_connections=True) == {"rust": 10}
    # A valid one after that is taken.
    reconfigure(envoy, path, {**cfg, "rust_weight_bp": 0}, version=4)
    assert served_by(envoy, 10, fresh_connections=True) == {"python": 10}
    m = envoy.snapshot()
    assert m("nd_filter_config_total", result="rejected") >= 2


def test_mirroring_switched_on_and_off_live(upstreams, start_envoy, workdir):
    py, rs = upstreams
    envoy, path, cfg = ecds_envoy(start_envoy, workdir, py, rs, rust_weight_bp=0)
    served_by(envoy, 5)
    reconfigure(envoy, path, {**cfg, "shadow": {"share_bp": 10000}}, version=2)
    served_by(envoy, 10, fresh_connections=True)
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_results_total", target="rust", result="match") == 10,
                   what="10 matches after switching mirroring on")
    reconfigure(envoy, path, cfg, version=3)
    served_by(envoy, 10, fresh_connections=True)
    time.sleep(0.3)
    assert rs.stats()["shadow"] == 10
