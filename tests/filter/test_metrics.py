"""The documented metrics appear at /stats/prometheus with their labels and
the right values."""

import re

import harness
import httpx
from harness import served_by

README = (harness.REPO / "wasm-filter/README.md").read_text()


def documented_families():
    # The metrics table: | `name` | type | labels | ... |
    return {m.group(1): (m.group(2), set(re.findall(r"`(\w+)`", m.group(3))))
            for m in re.finditer(r"^\| `(nd_filter_\w+)` \| (\w+) \| ([^|]*) \|", README, re.M)}


def test_every_documented_family_is_exported_with_its_labels(filtered_envoy, upstreams):
    envoy = filtered_envoy(rust_weight_bp=5000, shadow={"share_bp": 10000})
    served_by(envoy, 10)
    envoy.wait_for(lambda: envoy.metric("nd_filter_shadow_divergence_ppm_count", target="rust") +
                   envoy.metric("nd_filter_shadow_divergence_ppm_count", target="python") == 10,
                   what="histogram flush")
    envoy.snapshot()
    text = envoy.prometheus()
    families = documented_families()
    assert len(families) >= 12
    for name, (kind, labels) in families.items():
        assert f"# TYPE {name} {kind}" in text, f"{name} ({kind}) not exported"
        sample = "_count" if kind == "histogram" else ""
        series = [s for s in text.splitlines() if s.startswith((name + sample + "{", name + sample + " "))]
        assert series, name
        for line in series:
            got = set(re.findall(r'(\w+)="', line)) - {"le"}
            assert got == labels, f"{line}: labels {got}, documented {labels}"
    # Nothing undocumented.
    exported = set(re.findall(r"^# TYPE (nd_filter_\w+) ", text, re.M))
    assert exported == set(families)


def test_values_follow_the_traffic(filtered_envoy, upstreams):
    py, rs = upstreams
    rs.control(mode="status", status=500)
    envoy = filtered_envoy(rust_weight_bp=10000, breaker={"failure_threshold": 2, "recovery_ms": 60000})
    with httpx.Client(timeout=5) as c:
        codes = [c.post(envoy.url + "/predict", json=harness.PREDICT).status_code for _ in range(6)]
    assert codes == [500, 500, 200, 200, 200, 200]
    m = envoy.snapshot()
    assert m("nd_filter_requests_total", backend="rust", outcome="error") == 2
    assert m("nd_filter_requests_total", backend="python", outcome="success") == 4
    assert m("nd_filter_fallbacks_total", **{"from": "rust", "to": "python"}) == 4
    assert m("nd_filter_breaker_transitions_total", backend="rust", to="open") == 1
    assert m("nd_filter_breaker_state", backend="rust") == 2
    assert m("nd_filter_rust_weight_bp") == 10000
    # One root context per worker (2) plus the main thread's.
    assert m("nd_filter_config_total", result="accepted") >= 3
    assert m("nd_filter_config_total", result="rejected") == 0
