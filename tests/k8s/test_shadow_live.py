"""The shadow-mismatch MetricTemplate and the ShadowDivergence alert with the
filter in a real Envoy (deploy/local/envoy/envoy.yaml: its stats_tags, routes
and filter, on free ports), in front of the real services, scraped by a real
Prometheus from Envoy's /stats/prometheus.

Every /predict goes to Python (rust_weight_bp 0) and is mirrored to Rust
(shadow share 10000, python_to_rust); the filter compares the answers.
- healthy: Rust serves the same bundles as Python -> mismatch ratio 0;
- faulty: Rust serves, under the name mlp_d_standard, another bundle
  (mlp_d_mse: a wrong model deployed) -> every comparison is a mismatch.
"""

import json
import os
import re
import subprocess
import time

import pytest
import yaml
from k8s_prom import Prometheus, fill
from k8s_support import REPO, Proc, docs, find, free_port, wait_http

BUNDLES = REPO / "tests/fixtures/bundles"
REQUEST = REPO / "examples/predict-request.json"
ENVOY_YAML = REPO / "deploy/local/envoy/envoy.yaml"


def envoy_config(filter_wasm, listen, admin, python_port, rust_port):
    """deploy/local/envoy/envoy.yaml with its ports and module path set, mirroring everything to Rust."""
    cfg = yaml.safe_load(ENVOY_YAML.read_text())
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = listen
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    wasm = next(f for f in hcm["http_filters"] if f["name"] == "envoy.filters.http.wasm")["typed_config"]["config"]
    wasm["vm_config"]["code"]["local"]["filename"] = str(filter_wasm)
    plugin = json.loads(wasm["configuration"]["value"])
    plugin["rust_weight_bp"] = 0
    plugin["shadow"].update(share_bp=10000, direction="python_to_rust")
    plugin["backends"]["python"]["authority"] = f"127.0.0.1:{python_port}"
    plugin["backends"]["rust"]["authority"] = f"127.0.0.1:{rust_port}"
    wasm["configuration"]["value"] = json.dumps(plugin)
    ports = {"python": python_port, "rust": rust_port}
    for c in cfg["static_resources"]["clusters"]:
        c["load_assignment"]["endpoints"][0]["lb_endpoints"][0]["endpoint"]["address"]["socket_address"][
            "port_value"] = ports[c["name"]]
    return cfg


def hey(tools, url, n):
    r = subprocess.run([tools["HEY"], "-n", str(n), "-c", "2", "-m", "POST", "-T", "application/json",
                        "-D", str(REQUEST), url], capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {int(c): int(k) for c, k in re.findall(r"\[(\d{3})\]\s+(\d+) responses", r.stdout)}


@pytest.fixture(scope="module")
def shadow(tools, render, rust_binary, filter_wasm, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("shadow")
    wrong = workdir / "wrong-bundles"
    (wrong / "mlp_d_standard").mkdir(parents=True)
    for f in (BUNDLES / "mlp_d_mse").iterdir():
        (wrong / "mlp_d_standard" / f.name).write_bytes(f.read_bytes())
    procs = []

    def start(args, name, ready, env=None, timeout=60):
        p = Proc(args, workdir / f"{name}.log", env={**os.environ, **(env or {})})
        procs.append(p)
        wait_http(ready, p, timeout=timeout)
        return p

    try:
        py_port = free_port()
        start([tools["PYTHON"], "-m", "reference_service",
               "--model-path", str(BUNDLES), "--host", "127.0.0.1", "--port", str(py_port)], "python",
              f"http://127.0.0.1:{py_port}/ready", env={"PYTHONPATH": str(REPO / "python")}, timeout=120)
        rust = {}
        for name, models in (("healthy", BUNDLES), ("faulty", wrong)):
            port = free_port()
            start([str(rust_binary), "serve", "--model-path", str(models), "--host", "127.0.0.1", "--port", str(port)],
                  f"rust-{name}", f"http://127.0.0.1:{port}/ready")
            rust[name] = port
        out = {}
        for i, name in enumerate(("healthy", "faulty")):
            listen, admin = free_port(), free_port()
            cfg = workdir / f"envoy-{name}.yaml"
            cfg.write_text(yaml.safe_dump(envoy_config(filter_wasm, listen, admin, py_port, rust[name])))
            base_id = str(7100 + os.getpid() % 500 * 2 + i)
            start([tools["ENVOY"], "-c", str(cfg), "--concurrency", "2", "--base-id", base_id, "-l", "warning"],
                  f"envoy-{name}", f"http://127.0.0.1:{admin}/ready")
            (workdir / name).mkdir()
            prom = Prometheus(tools["PROMETHEUS"], workdir / name, [{
                "job_name": "istio-ingressgateway", "metrics_path": "/stats/prometheus",
                "static_configs": [{"targets": [f"127.0.0.1:{admin}"]}]}])
            procs.append(prom.proc)
            url = f"http://127.0.0.1:{listen}/predict?model=mlp_d_standard"
            hey(tools, url, 2)  # warm-up: the series exist before the load
            prom.wait_for('nd_filter_shadow_results_total{target="rust"}')
            time.sleep(2.5)
            load = hey(tools, url, 100)
            time.sleep(3)
            out[name] = {"prom": prom, "load": load}
        yield {**out, "documents": docs(render("canary"))}
    finally:
        for p in reversed(procs):
            p.stop()


def mismatch_ratio(shadow, name):
    query = find(shadow["documents"], "MetricTemplate", "neuro-divergent-shadow-mismatch-ratio")["spec"]["query"]
    return shadow[name]["prom"].scalar(fill(query, namespace="forecast", target="neuro-divergent", interval="1m"))


def test_clients_got_python_answers(shadow):
    assert shadow["healthy"]["load"] == {200: 100}
    assert shadow["faulty"]["load"] == {200: 100}  # the shadow never changes the client's answer


def test_shadow_mismatch_ratio_healthy_is_zero(shadow):
    assert shadow["healthy"]["prom"].query('sum(nd_filter_shadow_results_total{target="rust",result="match"}) > 50')
    assert mismatch_ratio(shadow, "healthy") == 0.0


def test_shadow_mismatch_ratio_faulty_fails_the_check(shadow):
    canary = find(shadow["documents"], "Canary")
    limit = next(m for m in canary["spec"]["analysis"]["metrics"]
                 if m["name"] == "shadow-mismatch-ratio")["thresholdRange"]["max"]
    value = mismatch_ratio(shadow, "faulty")
    assert value is not None and value > limit, value


def test_shadow_divergence_alert_expression(shadow, render):
    rule = find(docs(render("default")), "PrometheusRule")
    expr = next(r["expr"] for g in rule["spec"]["groups"] for r in g["rules"] if r["alert"] == "ShadowDivergence")
    assert shadow["healthy"]["prom"].query(expr) == []
    assert shadow["faulty"]["prom"].query(expr)
