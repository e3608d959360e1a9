"""`make soak`'s short version (loadtest/soak.py, 60 s instead of 600 s): mixed
load through Envoy + the filter (valid predicts of every bundle, bad requests),
a hot reload every 6 s, a weight change every 5 s (0 -> 10 -> 50 -> 100 %),
RSS of every process sampled: no failed valid request, every bad request its
4xx, no crash, the RSS trends within loadtest.soak.BOUNDS_MB.

Its reports go to pytest's tmp dir (the committed ones come from `make soak`);
the summary to loadtest/results/e2e-soak.json.
"""

from __future__ import annotations

from loadtest import soak

SECONDS = 60


def test_soak_short(tools, tmp_path, record):
    r = soak.run(seconds=SECONDS, results_dir=tmp_path / "results", workdir=tmp_path / "mesh")
    req = r["requests"]
    record("soak", {
        "passed": r["passed"], "failures": r["failures"], "seconds": r["seconds"], "elapsed_s": r["elapsed_s"],
        "requests": {k: v for k, v in req.items() if k != "by_kind"},
        "reloads": f"{r['reloads_picked_up']}/{r['reloads_done']}", "weight_changes": r["weight_changes_done"],
        "deaths": r["deaths"],
        "rss": {n: {k: s[k] for k in ("start_mb", "warm_mb", "end_mb", "slope_mb_per_min", "trend_growth_mb",
                                      "bound_mb")} for n, s in r["rss"].items()},
        "report": r.get("report_files"),
    })
    print(soak.summary_line(r))
    assert req["valid"] > 500 and req["valid_failed"] == 0, (req, r["first_failures"][:5])
    assert req["bad"] > 0 and req["bad_unexpected"] == 0 and req["bad_5xx"] == 0, r["first_failures"][:5]
    assert r["per_bundle_ok"]["bundles"] == r["bundles"], r["per_bundle_ok"]
    assert not r["deaths"] and r["rust_panics"] == 0
    assert r["reloads_done"] >= 5 and r["reloads_picked_up"] == r["reloads_done"] and r["reload_failures"] == 0
    assert r["weight_changes_done"] >= 8 and r["weight_changes_done"] == len(r["weight_changes"]), \
        r["weight_changes"]
    for name in ("rust", "python", "envoy"):
        assert r["rss"][name]["ok"], (name, r["rss"][name])
    assert r["passed"], r["failures"]
