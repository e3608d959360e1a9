"""The filter in front of the real services: every golden case is answered
through Envoy and mirrored to the other service; the filter's comparator must
find no mismatch.

`tests/filter/real_backends.sh` (make test-filter) starts both services and
runs it; against services already running, give them by URL (without them the
tests fail, they do not skip):

    ND_FILTER_PYTHON_URL=http://127.0.0.1:8000 ND_FILTER_RUST_URL=http://127.0.0.1:8080 \\
        $(scripts/python-env.sh)/bin/pytest -q tests/filter/test_real_backends.py

Both services must have tests/fixtures/bundles loaded (e.g.
`python -m reference_service --model-path tests/fixtures/bundles` and the Rust
service with the same model path).
"""

import json
import os
from pathlib import Path

import harness
import httpx
import pytest

CASES = sorted(Path(os.environ.get("ND_FILTER_CASES", harness.REPO / "tests/fixtures/cases")).glob("*.json"))


@pytest.mark.real_backends
def test_real_services_agree_through_the_filter(real_backends, start_envoy):
    py, rs = real_backends
    for b in real_backends:
        assert httpx.get(b.url + "/ready", timeout=5).status_code == 200, f"{b.name} at {b.url} is not ready"
    cfg = harness.filter_config(py, rs, rust_weight_bp=5000, shadow={"share_bp": 10000, "max_body_bytes": 1 << 20})
    envoy = start_envoy(harness.bootstrap([py, rs], [harness.wasm_filter(cfg)], route_timeout="30s"))
    sent = 0
    with httpx.Client(timeout=30) as c:
        for path in CASES:
            case = json.loads(path.read_text())
            for _ in range(2):  # both backends primary, most likely
                r = c.post(f"{envoy.url}/predict?model={case['bundle']}", json=case["request"])
                assert r.status_code == 200, (path.name, r.text[:500])
                sent += 1
        # Contract errors compare by error.code.
        model = json.loads(CASES[0].read_text())["bundle"] if CASES else "none"
        for body in (b"not json", b"{}", b'{"df": []}'):
            r = c.post(f"{envoy.url}/predict?model={model}", content=body, headers={"content-type": "application/json"})
            assert r.status_code in (400, 422), (body, r.text[:500])
            sent += 1
        # Without ?model= the Rust service answers from the query alone, maybe
        # before Envoy has the body: the filter then counts an answered_early skip.
        r = c.post(envoy.url + "/predict", content=b"{}", headers={"content-type": "application/json"})
        assert r.status_code == 400, r.text[:500]
        sent += 1
    assert sent > 0
    def results_now():
        m = envoy.snapshot()
        r = {x: sum(m("nd_filter_shadow_results_total", target=t, result=x)
                    for t in ("python", "rust")) for x in ("match", "mismatch", "error")}
        return r | {"answered_early": m("nd_filter_shadow_skipped_total", reason="answered_early")}

    try:
        results = envoy.wait_for(lambda: (r := results_now()) and sum(r.values()) >= sent and r,
                                 timeout=120, what=f"{sent} comparisons")
    except AssertionError:
        shadow = {f"{k[0]}{dict(k[1])}": v for k, v in envoy.metrics().items()
                  if v and k[0].startswith("nd_filter_shadow") and "divergence" not in k[0]}
        raise AssertionError(f"{sent} requests sent, comparisons {results_now()}; shadow metrics {shadow}\n"
                             + envoy.log()[-3000:]) from None
    mismatches = [line for line in envoy.log().splitlines() if "shadow mismatch" in line]
    assert results["mismatch"] == 0, "\n".join(mismatches[:20])
    assert results["error"] == 0, envoy.log()[-3000:]
    assert results["answered_early"] <= 1
    assert results["match"] + results["answered_early"] == sent, results


@pytest.mark.real_backends
def test_a_wrong_interval_calibration_is_caught(real_backends, start_envoy):
    """`wrong_intervals` (real_backends.sh) has the same weights in both
    services but, in the Rust one, conformity scores scaled by 1.25: point
    forecasts match, and every request asking for intervals is a mismatch on
    an interval column, named in the log."""
    py, rs = real_backends
    listed = {b["name"] for b in httpx.get(rs.url + "/models", timeout=5).json()["models"]}
    assert "wrong_intervals" in listed, "run through tests/filter/real_backends.sh (it writes the bundle)"
    case = json.loads((harness.REPO / "tests/fixtures/cases/mlp_d_conformal_error__level.json").read_text())
    body = case["request"]
    cfg = harness.filter_config(py, rs, rust_weight_bp=0, shadow={"share_bp": 10000, "max_body_bytes": 1 << 20})
    envoy = start_envoy(harness.bootstrap([py, rs], [harness.wasm_filter(cfg)], route_timeout="30s"))
    point = {k: v for k, v in body.items() if k != "level"}
    with httpx.Client(timeout=30) as c:
        for i, req in enumerate([point, point, body, body, dict(point, quantiles=[0.2, 0.9])]):
            r = c.post(f"{envoy.url}/predict?model=wrong_intervals", json=req,
                       headers={"x-request-id": f"wrong-intervals-{i}"})
            assert r.status_code == 200, r.text[:500]

    def results():
        m = envoy.snapshot()
        r = {x: m("nd_filter_shadow_results_total", target="rust", result=x) for x in ("match", "mismatch", "error")}
        return r if sum(r.values()) >= 5 else None

    assert envoy.wait_for(results, timeout=60, what="5 comparisons") == {"match": 2, "mismatch": 3, "error": 0}
    log = [line for line in envoy.log().splitlines() if "shadow mismatch" in line]
    assert any("request_id=wrong-intervals-2" in line and ("].MLP-lo-" in line or "].MLP-hi-" in line)
               for line in log), "\n".join(log)
    assert any("request_id=wrong-intervals-4" in line and "].MLP-ql" in line for line in log), "\n".join(log)
