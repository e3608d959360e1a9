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

from loadtest import gates
from loadtest import mesh as mesh_mod

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


URL_NAMES = (r"client URL \(Envoy \+ filter\)|Envoy admin|Prometheus|Python service \(direct\)|"
             r"Rust service \(direct\)")


def start_run(tmp_path, *args):
    """`python -m loadtest.mesh run --ephemeral --for FOR ARGS`, read until it
    says it is up: (process, what it printed, its URLs, the printed curl, state file)."""
    state = tmp_path / "state.json"
    p = subprocess.Popen([sys.executable, "-m", "loadtest.mesh", "run", "--ephemeral", "--for", str(FOR),
                          "--state", str(state), "--workdir", str(tmp_path / "mesh"), *args],
                         cwd=REPO, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True,
                         start_new_session=True)
    out = []
    for line in p.stdout:
        out.append(line)
        if "Ctrl-C stops everything" in line:
            break
    text = "".join(out)
    urls = dict(re.findall(rf"^\s+({URL_NAMES})\s+(http://127\.0\.0\.1:\d+\S*)", text, re.M))
    curl = re.search(r"^\s+(curl .*)$", text, re.M)
    return p, text, urls, curl.group(1) if curl else None, state


def paste(curl: str):
    """The printed curl as pasted (from the repository root): (status, body)."""
    r = subprocess.run(shlex.split(curl) + ["-w", "\n%{http_code}"], cwd=REPO, capture_output=True,
                       text=True, timeout=30)
    body, code = r.stdout.rsplit("\n", 1)
    return code, body


def finish(p):
    """Waits for the --for deadline; the rest of the output."""
    try:
        return p.communicate(timeout=FOR + 60)[0]
    finally:
        if p.poll() is None:
            os.killpg(p.pid, 2)
            p.wait(60)


def test_make_run_entry_point(tools, tmp_path, record):
    t0 = time.monotonic()
    p, text, urls, curl, state = start_run(tmp_path)
    try:
        ready_s = time.monotonic() - t0
        assert p.poll() is None, text
        assert len(urls) == 5, text
        st = json.loads(state.read_text())
        pids = st["pids"]
        assert set(pids) == {"python", "rust", "envoy", "prometheus"}
        assert all(alive(pid) for pid in pids.values())

        # The printed curl works as pasted (from the repository root).
        code, body = paste(curl)
        assert code == "200", body
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
        direct = (bad_direct.status_code, bad_direct.json()["error"]["code"])
        assert (bad.status_code, bad.json()["error"]["code"]) == direct == (404, "unknown_model")

        assert httpx.get(urls["Envoy admin"] + "/ready", timeout=5).status_code == 200
        prom = gates.PromClient(urls["Prometheus"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline and len(prom.query("up == 1")) < 3:
            time.sleep(0.5)
        jobs = sorted(x["metric"]["job"] for x in prom.query("up == 1"))
        assert jobs == ["envoy", "neuralforecast-python", "neuro-divergent"], jobs
        rules = httpx.get(urls["Prometheus"] + "/api/v1/rules", timeout=5).json()["data"]["groups"]
        alerts = sorted(r["name"] for g in rules for r in g["rules"])
    finally:
        rest = finish(p)
    total_s = time.monotonic() - t0
    text += rest
    record("make-run", {"ready_s": round(ready_s, 1), "exit_status": p.returncode, "total_s": round(total_s, 1),
                        "urls": urls, "pids": pids, "alerts_loaded": alerts})
    assert p.returncode == 0, text
    assert "mesh: stopped" in text
    assert not [n for n, pid in pids.items() if alive(pid)], "every process it started is gone"
    assert not state.exists()
    assert "RustCircuitOpen" in alerts and "ShadowDivergence" in alerts


def test_make_run_with_the_api_profile_of_another_service(tools, tmp_path, record):
    """`make run API_PROFILE=tests/profiles/records_under_key/profile.toml`: both
    services speak that team's API (rows under "data", the model named in the
    body, renamed columns, ISO dates), the printed curl is that team's call, the
    filter compares answers of that shape (0 mismatches), and moving all traffic
    to Rust leaves the client's answer the same."""
    team = REPO / "tests/profiles/records_under_key"
    p, text, urls, curl, state = start_run(tmp_path, "--api-profile", str(team / "profile.toml"),
                                           "--shadow-bp", "10000")
    try:
        assert p.poll() is None and len(urls) == 5, text
        assert "model=" not in curl and "@" in curl, curl  # the model is named in the body
        st = json.loads(state.read_text())
        assert st["plugin_config"]["shadow"]["answer"]["id"] == "series", st["plugin_config"]
        example = json.loads((team / "example.json").read_text())

        code, body = paste(curl)
        assert code == "200", body
        through_envoy = json.loads(body)
        direct = httpx.post(urls["Python service (direct)"] + "/predict", json=example["body"], timeout=30)
        assert direct.status_code == 200, direct.text
        assert through_envoy == direct.json()
        assert set(through_envoy) == {"forecast"} and {"series", "timestamp"} <= set(through_envoy["forecast"][0])
        # A contract-shaped body is not this API: the profile's 4xx, from either service.
        wrong = httpx.post(urls["client URL (Envoy + filter)"] + "?model=mlp_exog",
                           content=(REPO / "examples/predict-request.json").read_bytes(),
                           headers={"content-type": "application/json"}, timeout=30)
        assert wrong.status_code in (400, 422), wrong.text

        mesh = mesh_mod.Mesh.attach(state, log=lambda *_: None)

        def shadow_results():
            return {x: mesh.envoy_metric("nd_filter_shadow_results_total", target="rust", result=x)
                    for x in ("match", "mismatch", "error")}

        deadline = time.monotonic() + 30
        while time.monotonic() < deadline and sum(shadow_results().values()) < 2:
            time.sleep(0.2)
        compared = shadow_results()

        # The migration's last step: all traffic to Rust, the client's call unchanged.
        r = subprocess.run([sys.executable, "-m", "loadtest.mesh", "set", "--weight", "10000", "--state", str(state)],
                           cwd=REPO, capture_output=True, text=True, timeout=60)
        assert r.returncode == 0, r.stdout + r.stderr
        before = {n: mesh.predictions(n) for n in ("python", "rust")}
        on_rust = httpx.post(urls["client URL (Envoy + filter)"], json=example["body"], timeout=30)
        assert on_rust.status_code == 200, on_rust.text
        after = {n: mesh.predictions(n) for n in ("python", "rust")}
        assert (after["rust"] - before["rust"], after["python"] - before["python"]) == (1, 0), (before, after)
        ours, theirs = on_rust.json()["forecast"], direct.json()["forecast"]
        assert [list(x) for x in ours] == [list(x) for x in theirs]
        for a, b in zip(ours, theirs):
            for k, v in b.items():
                if isinstance(v, float):
                    assert abs(a[k] - v) <= 1e-4 + 1e-5 * abs(v), (k, a[k], v)
                else:
                    assert a[k] == v, (k, a[k], v)
    finally:
        rest = finish(p)
    record("make-run-api-profile", {"profile": str(team.relative_to(REPO)), "shadow_results": compared})
    assert compared == {"match": 2, "mismatch": 0, "error": 0}, (compared, text + rest)
    assert p.returncode == 0, text + rest


def test_make_run_imports_no_test_code():
    """`make run`, `make loadtest`, `make migrate` and `make soak` are the
    product: they import nothing from tests/ (a fresh interpreter, as make runs them)."""
    code = ("import sys, loadtest.mesh, loadtest.loadtest, loadtest.migrate, loadtest.soak, loadtest.faults\n"
            "print('\\n'.join(sorted(str(getattr(m, '__file__', '') or '') for m in list(sys.modules.values()))))")
    r = subprocess.run([sys.executable, "-c", code], cwd=REPO, capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr[-3000:]
    files = r.stdout.splitlines()
    assert any(f.endswith("loadtest/mesh.py") for f in files)
    from_tests = [f for f in files if f.startswith(str(REPO / "tests") + os.sep)]
    assert not from_tests, from_tests


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
