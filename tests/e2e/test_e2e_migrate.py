"""`make migrate` and `make loadtest` entry points on a running mesh (attached
through its state file, as they attach to `make run`'s mesh):

- the happy path promotes Rust 0 -> 1 -> 10 -> 25 -> 50 -> 100% under hey
  load with every gate passing and no failed request;
- `loadtest.loadtest` (short scenarios) writes its Markdown report and charts;
- `--inject wrong-numbers`: the shadow mismatch gate fails after the first
  step and the walkthrough rolls back to 0%, saying why.

Order matters: the wrong-numbers run goes last, because the chart's
ShadowDivergence alert looks at the last 10 minutes.
"""

from __future__ import annotations

import json
import subprocess
import sys
import time

import pytest
from e2e_support import REPO, start_mesh

from loadtest import migrate as migrate_mod
from loadtest.mesh import MODEL

HOLD = 5


@pytest.fixture(scope="module")
def mesh(tools, tmp_path_factory):
    m = start_mesh(tmp_path_factory, "migrate")
    yield m
    m.stop()


def run_module(args, timeout):
    p = subprocess.run([sys.executable, *args], cwd=REPO, capture_output=True, text=True, timeout=timeout,
                       start_new_session=True)
    print(p.stdout[-6000:])
    if p.stderr.strip():
        print(p.stderr[-3000:])
    return p


def migrate(mesh, tmp_path, *extra, timeout=240):
    report = tmp_path / "migrate.json"
    p = run_module(["-m", "loadtest.migrate", "--state", str(mesh.state_file), "--hold", str(HOLD),
                    "--report", str(report), *extra], timeout)
    return p, json.loads(report.read_text())


def gate_values(rep):
    return [{"weight_bp": ph["weight_bp"], **{g["name"]: g["value"] for g in ph.get("gates", [])
                                               if not g["name"].startswith("alert ")}}
            for ph in rep["phases"] if ph.get("gates")]


def test_migrate_happy_path_promotes_without_dropping_a_request(mesh, tmp_path, record):
    t0 = time.monotonic()
    p, rep = migrate(mesh, tmp_path)
    took = time.monotonic() - t0
    load = rep["load_result"]
    record("migrate-happy", {
        "exit_status": p.returncode, "outcome": rep["outcome"], "seconds": round(took, 1),
        "requests": load["requests"], "failed": load["failed"], "p99_ms": load["latency_ms"].get("p99"),
        "reconfig_ms": [ph.get("reconfig_ms") for ph in rep["phases"]],
        "gates": gate_values(rep),
    })
    assert p.returncode == 0, p.stdout + p.stderr
    assert rep["outcome"] == "promoted"
    assert [ph["weight_bp"] for ph in rep["phases"]] == [0, 100, 1000, 2500, 5000, 10000]
    assert load["failed"] == 0 and load["requests"] > 0, load
    assert mesh.envoy_metric("nd_filter_rust_weight_bp") == 10000


def test_loadtest_entry_point_writes_report_and_charts(mesh, tmp_path, record):
    out = tmp_path / "results"
    config_before = json.loads(mesh.state_file.read_text())["plugin_config"]
    p = run_module(["-m", "loadtest.loadtest", "--state", str(mesh.state_file), "--duration", "2s",
                    "--warmup", "", "-c", "2", "--out", str(out)], 240)
    assert p.returncode == 0, p.stdout + p.stderr
    md = list(out.glob("loadtest-*.md"))
    pngs = sorted(x.name.rsplit("-", 1)[-1] for x in out.glob("loadtest-*.png"))
    assert len(md) == 1 and pngs == ["latency.png", "throughput.png"], (md, pngs)
    rep = json.loads(md[0].with_suffix(".json").read_text())
    text = md[0].read_text()
    for s in ("Python service direct", "Rust service direct", "Envoy, Rust weight 0%", "Envoy, Rust weight 10%",
              "Envoy, Rust weight 50%", "Envoy, Rust weight 100%", "mirroring"):
        assert s in text
    for png in out.glob("*.png"):
        assert png.read_bytes()[:8] == b"\x89PNG\r\n\x1a\n" and png.stat().st_size > 10_000
    record("loadtest-smoke", {"ratios": rep["ratios"],
                              "rps": {k: round(v["rps"], 1) for k, v in rep["results"].items()},
                              "p99_ms": {k: v["latency_ms"].get("p99") for k, v in rep["results"].items()},
                              "failed": {k: v["failed"] for k, v in rep["results"].items()}})
    assert all(v["failed"] == 0 for v in rep["results"].values())
    assert rep["results"]["envoy-mirror"]["shadow"].get("match", 0) > 0
    assert not rep["results"]["envoy-mirror"]["shadow"].get("mismatch")
    # It restored the running mesh's filter configuration.
    assert json.loads(mesh.state_file.read_text())["plugin_config"] == config_before


def test_migrate_wrong_numbers_fails_the_gate_and_rolls_back(mesh, tmp_path, record):
    h0 = migrate_mod.bundle_hash(mesh)
    p, rep = migrate(mesh, tmp_path, "--inject", "wrong-numbers")
    load = rep["load_result"]
    mismatch = [g for ph in rep["phases"] for g in ph.get("gates", []) if g["name"] == "shadow mismatch ratio"]
    record("migrate-wrong-numbers", {
        "exit_status": p.returncode, "outcome": rep["outcome"], "rolled_back_from_bp": rep.get("rolled_back_from_bp"),
        "reason": rep.get("rollback_reason"), "mismatch_ratio": [g["value"] for g in mismatch],
        "final_weight_bp": rep["final_weight_bp"], "requests": load["requests"], "failed": load["failed"],
    })
    assert p.returncode == 1, p.stdout + p.stderr
    assert rep["outcome"] == "rolled_back" and rep["rolled_back_from_bp"] == 100
    assert "shadow mismatch ratio" in rep["rollback_reason"]
    assert "ROLLBACK 1% -> 0%" in p.stdout
    assert mismatch[-1]["value"] > 0.5 and not mismatch[-1]["ok"]
    assert rep["final_weight_bp"] == 0
    time.sleep(0.5)
    assert mesh.envoy_metric("nd_filter_rust_weight_bp") == 0
    assert load["failed"] == 0, load
    # The injected bundle was put back: Rust reloads the original bytes.
    deadline = time.monotonic() + 15
    while migrate_mod.bundle_hash(mesh) != h0 and time.monotonic() < deadline:
        time.sleep(0.2)
    assert migrate_mod.bundle_hash(mesh) == h0, f"{MODEL} restored"
