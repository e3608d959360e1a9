"""`make run`'s entry point (python -m loadtest.mesh run), non-interactively
(--for 20, ephemeral ports): it prints what runs where and a ready-to-paste
curl, a client calls /predict through Envoy exactly as it calls the Python
service, Prometheus scrapes all three targets, and everything it started is
gone when it exits. Plus the static pieces: the shipped Prometheus config
matches what the mesh generates, and the chart's alerts make a valid rule file.
"""

from __future__ import annotations

import json
import os
import re
import shlex
import subprocess
import sys
import time

import httpx
import yaml

from e2e_support import REPO
from loadtest import gates, mesh as mesh_mod

FOR = 20


def alive(pid):
    try:
        os.kill(pid, 0)
    except ProcessLookupError:
        return False
    # A zombie not yet reaped by its parent is gone for our purpose.
    try:
        return open(f"/proc/{pid}/stat").read().split()[2] != "Z"
    except OSError:
        return False


def test_make_run_entry_point(tools, tmp_path, record):
    state = tmp_path / "state.json"
    t0 = time.monotonic()
    p = subprocess.Popen([sys.executable, "-m", "loadtest.mesh", "run", "--ephemeral", "--for", str(FOR),
                          "--state", str(state), "--workdir", str(tmp_path / "mesh")],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    out = []
    try:
        for line in p.stdout:
            out.append(line)
            if "Ctrl-C stops everything" in line:
                break
        text = "".join(out)
        ready_s = time.monotonic() - t0
        assert p.poll() is None, text
        urls = dict(re.findall(r"^\s+(client URL \(Envoy \+ filter\)|Envoy admin|Prometheus|"
                               r"Python service \(direct\)|Rust service \(direct\))\s+(http://127\.0\.0\.1:\d+\S*)",
                               text, re.M))
        assert len(urls) == 5, text
        curl = re.search(r"^\s+(curl .*)$", text, re.M).group(1)
        st = json.loads(state.read_text())
        pids = st["pids"]
        assert set(pids) == {"python", "rust", "envoy", "prometheus"}
        assert all(alive(pid) for pid in pids.values())

        # The printed curl works as pasted (from the repository root).
        r = subprocess.run(shlex.split(curl) + ["-w", "\n%{http_code}"], cwd=REPO, capture_output=True,
                           text=True, timeout=30)
        body, code = r.stdout.rsplit("\n", 1)
        assert code == "200", r.stdout
        through_envoy = json.loads(body)

        # Same call, same answer as the Python service direct (weight 0: Python answers).
        req = (REPO / "examples/predict-request.json").read_bytes()
        h = {"content-type": "application/json"}
        client = urls["client URL (Envoy + filter)"]
        direct = httpx.post(urls["Python service (direct)"] + f"/predict?model={mesh_mod.MODEL}", content=req,
                            headers=h, timeout=30)
        assert direct.status_code == 200
        assert through_envoy == direct.json()
        bad = httpx.post(client + "?model=no_such_bundle", content=req, headers=h, timeout=30)
        bad_direct = httpx.post(urls["Python service (direct)"] + "/predict?model=no_such_bundle", content=req,
                                headers=h, timeout=30)
        assert (bad.status_code, bad.json()["error"]["code"]) == (bad_direct.status_code,
                                                                   bad_direct.json()["error"]["code"]) == (404, "unknown_model")

        assert httpx.get(urls["Envoy admin"] + "/ready", timeout=5).status_code == 200
        prom = gates.PromClient(urls["Prometheus"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(prom.query("up == 1")) < 3:
            time.sleep(0.5)
        jobs = sorted(x["metric"]["job"] for x in prom.query("up == 1"))
        assert jobs == ["envoy", "neuralforecast-python", "neuro-divergent"], jobs
        rules = httpx.get(urls["Prometheus"] + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        alerts = sorted(r["name"] for g in rules for r in g["rules"])

        rest = p.communicate(timeout=FOR + 60)[0]
        total_s = time.monotonic() - t0
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 2)
            p.wait(60)
    text += rest
    record("make-run", {"ready_s": round(ready_s, 1), "exit_status": p.returncode, "total_s": round(total_s, 1),
                        "urls": urls, "pids": pids, "alerts_loaded": alerts})
    assert p.returncode == 0, text
    assert "mesh: stopped" in text
    assert not [n for n, pid in pids.items() if alive(pid)], "every process it started is gone"
    assert not state.exists()
    assert "RustCircuitOpen" in alerts and "ShadowDivergence" in alerts


def test_shipped_prometheus_config_matches_the_mesh():
    shipped = yaml.safe_load((REPO / "deploy/local/prometheus/prometheus.yml").read_text())
    assert shipped["scrape_configs"] == mesh_mod.scrape_configs(mesh_mod.DEFAULT_PORTS)
    assert shipped["global"]["scrape_interval"] == "1s"


def test_chart_alerts_make_a_valid_rule_file(tools, tmp_path):
    path = gates.write_rules_file(tmp_path / "chart.rules.yml")
    r = subprocess.run(["promtool", "check", "rules", str(path)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    names = [x["alert"] for x in gates.alert_rules()]
    assert {"HighErrorRate", "HighLatency", "ShadowDivergence", "RustCircuitOpen"} <= set(names)
    for name in ("error-ratio", "latency-p99", "shadow-mismatch-ratio"):
        assert "{{" not in gates.local_query(name, "30s")
