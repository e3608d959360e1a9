"""The Flagger MetricTemplates, alerts and dashboard queries against a real
Prometheus scraping the real Rust service (target/release/neuro-divergent,
configured by the chart's rendered config.toml) under a bounded hey load.

Prometheus labels each target as the ServiceMonitor would in a cluster
(namespace, pod, job); the pod names are those of Flagger's canary pods
(<target>-<replicaset hash>-<pod hash>), so the templates' pod regex is
exercised too.

Failing runs, each a real behaviour of the real service:
- errors: an instance with max_concurrency=1 (MAX_CONCURRENCY env) under
  hey -c 8 sheds load with real 503 `overloaded` answers;
- latency: requests whose body arrives 0.7 s after their headers (clients on
  a slow link). The service starts timing a prediction when the headers are
  in, so neuro_divergent_prediction_duration_seconds includes the upload and
  these count as slow predictions (CPU throttling was tried: SIGSTOP/SIGCONT
  by PID rarely lands inside a 0.3 ms request, so it was not deterministic).
"""

import json
import os
import re
import socket
import subprocess
import threading
import time

import httpx
import pytest
from k8s_prom import Prometheus, fill
from k8s_support import NAMESPACE, REPO, Proc, docs, find, free_port, wait_http

BUNDLES = REPO / "tests/fixtures/bundles"
REQUEST = REPO / "examples/predict-request.json"
MODEL = "mlp_d_standard"
TARGET = "neuro-divergent"
INTERVAL = "1m"

# (namespace label, pod label) per instance, as a ServiceMonitor would label the canary pod.
HEALTHY = (NAMESPACE, f"{TARGET}-7d9f8b6c5d-x2x9z")
FAULTY = ("forecast-faulty", f"{TARGET}-5f6c7d8e9a-q8w7e")
SLOW = ("forecast-slow", f"{TARGET}-6a7b8c9d0e-k3j4h")
PRIMARY = (NAMESPACE, f"{TARGET}-primary-7d9f8b6c5d-p1p2p")  # must never match the templates


def start_service(binary, config, workdir, name, env=None):
    port = free_port()
    proc = Proc([str(binary), "serve", "--config", str(config), "--model-path", str(BUNDLES),
                 "--host", "127.0.0.1", "--port", str(port)],
                workdir / f"{name}.log", env={**os.environ, **(env or {})})
    wait_http(f"http://127.0.0.1:{port}/ready", proc, timeout=60)
    return proc, port


def hey(tools, port, n, c, extra=()):
    r = subprocess.run([tools["HEY"], "-n", str(n), "-c", str(c), *extra, "-m", "POST", "-T", "application/json",
                        "-D", str(REQUEST), f"http://127.0.0.1:{port}/predict?model={MODEL}"],
                       capture_output=True, text=True, timeout=300)
    assert r.returncode == 0, r.stderr
    return {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", r.stdout)}


@pytest.fixture(scope="module")
def live(tools, render, rust_binary, tmp_path_factory):
    workdir = tmp_path_factory.mktemp("live")
    documents = docs(render("canary"))
    cm = find(documents, "ConfigMap", TARGET)
    config = workdir / "config.toml"
    config.write_text(cm["data"]["config.toml"])  # the chart's own config.toml, flags add host/port/models
    procs = {}
    try:
        procs["healthy"] = start_service(rust_binary, config, workdir, "healthy")
        procs["primary"] = start_service(rust_binary, config, workdir, "primary")
        procs["faulty"] = start_service(rust_binary, config, workdir, "faulty", env={"MAX_CONCURRENCY": "1"})
        procs["slow"] = start_service(rust_binary, config, workdir, "slow")
        labels = {"healthy": HEALTHY, "primary": PRIMARY, "faulty": FAULTY, "slow": SLOW}
        scrape = [{"job_name": TARGET, "metrics_path": "/metrics", "static_configs": [
            {"targets": [f"127.0.0.1:{procs[k][1]}"], "labels": {"namespace": ns, "pod": pod}}
            for k, (ns, pod) in labels.items()]}]
        prom = Prometheus(tools["PROMETHEUS"], workdir, scrape)
        procs["prometheus"] = (prom.proc, prom.port)
        prom.wait_for('up{job="neuro-divergent"} == 1')
        # One request each first, so the series exist before the load: rate() only counts
        # increases between samples, as in a cluster where the series have long existed.
        for k in labels:
            hey(tools, procs[k][1], 1, 1)
        prom.wait_for('count(neuro_divergent_http_requests_total{route="/predict"}) == 4')
        time.sleep(2.5)
        # Loads that span several scrapes (1 s): 400 requests at 100/s; the overload for 4 s.
        loads = {
            "healthy": hey(tools, procs["healthy"][1], 400, 2, extra=("-q", "50")),
            "primary": hey(tools, procs["primary"][1], 50, 2, extra=("-q", "25")),
            "faulty": overload(tools, procs["faulty"][1]),
        }
        loads["slow"] = slow_upload_load(tools, procs["slow"][1])
        time.sleep(3)  # two more scrapes after the last request
        # The 503 series is born during the overload: rate() needs two of its samples.
        prom.wait_for(f'count_over_time(neuro_divergent_http_requests_total{{namespace="{FAULTY[0]}",'
                      f'status="503"}}[1m]) >= 2')
        yield {"prom": prom, "documents": documents, "loads": loads, "ports": {k: v[1] for k, v in procs.items()}}
    finally:
        for proc, _ in procs.values():
            proc.stop()


def hey_for(tools, port, duration, c):
    """hey -z: bounded by time (the shedding case needs a burst longer than a scrape)."""
    r = subprocess.run([tools["HEY"], "-z", duration, "-c", str(c), "-m", "POST", "-T", "application/json",
                        "-D", str(REQUEST), f"http://127.0.0.1:{port}/predict?model={MODEL}"],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    return {int(code): int(count) for code, count in re.findall(r"\[(\d{3})\]\s+(\d+) responses", r.stdout)}


def slow_request(port, stall=0.7):
    """One /predict whose body arrives `stall` seconds after its headers (a client on a slow
    link); returns the status. While it uploads it holds one of the service's concurrency slots."""
    body = REQUEST.read_bytes()
    head = (f"POST /predict?model={MODEL} HTTP/1.1\r\nHost: 127.0.0.1\r\nContent-Type: application/json\r\n"
            f"Content-Length: {len(body)}\r\nConnection: close\r\n\r\n").encode()
    with socket.create_connection(("127.0.0.1", port), timeout=30) as s:
        s.sendall(head)
        time.sleep(stall)
        s.sendall(body)
        reply = b""
        while chunk := s.recv(65536):
            reply += chunk
    return int(reply.split(b" ", 2)[1])


def overload(tools, port, duration_s=4, c=8):
    """hey against an instance with max_concurrency=1 while slow uploads keep its only slot
    taken most of the time: real 503 `overloaded` answers, deterministically many."""
    stop = threading.Event()

    def hold():
        while not stop.is_set():
            slow_request(port, stall=0.5)

    holder = threading.Thread(target=hold)
    holder.start()
    time.sleep(0.1)
    try:
        return hey_for(tools, port, f"{duration_s}s", c)
    finally:
        stop.set()
        holder.join()


def slow_upload_load(tools, port, slow=12, fast=100):
    """`fast` hey requests plus `slow` requests whose body arrives 0.7 s after their headers
    (a client on a slow link). The service times a prediction from the moment its headers are
    in, so these are slow predictions as the metric sees them."""
    statuses = []

    def one():
        statuses.append(slow_request(port))

    threads = [threading.Thread(target=one) for _ in range(slow)]
    for i, t in enumerate(threads):
        t.start()
        if i % 4 == 3:
            time.sleep(0.8)  # spread over several scrapes
    codes = hey(tools, port, fast, 2, extra=("-q", "50"))
    for t in threads:
        t.join()
    codes[200] = codes.get(200, 0) + statuses.count(200)
    return codes


def template_query(documents, suffix):
    return find(documents, "MetricTemplate", f"{TARGET}-{suffix}")["spec"]["query"]


def evaluate(live, suffix, namespace):
    return live["prom"].scalar(fill(template_query(live["documents"], suffix),
                                    namespace=namespace, target=TARGET, interval=INTERVAL))


def test_loads_were_what_the_cases_need(live):
    loads = live["loads"]
    assert loads["healthy"] == {200: 400}
    assert loads["faulty"].get(503, 0) > 40 and loads["faulty"].get(200, 0) > 0, loads["faulty"]
    assert loads["slow"] == {200: 112}


def test_error_ratio_healthy_is_zero(live):
    assert evaluate(live, "error-ratio", HEALTHY[0]) == 0.0


def test_error_ratio_faulty_fails_the_check(live):
    canary = find(live["documents"], "Canary")
    error_ratio = next(m for m in canary["spec"]["analysis"]["metrics"] if m["name"] == "error-ratio")
    limit = error_ratio["thresholdRange"]["max"]
    value = evaluate(live, "error-ratio", FAULTY[0])
    assert value is not None and value > limit, (value, live["loads"]["faulty"])


def test_latency_p99_healthy_is_under_the_threshold(live):
    value = evaluate(live, "latency-p99", HEALTHY[0])
    assert value is not None and 0 < value < 0.5, value


def test_latency_p99_slow_fails_the_check(live):
    value = evaluate(live, "latency-p99", SLOW[0])
    assert value is not None and value > 0.5, value


def test_templates_ignore_primary_pods(live):
    """Only the primary pod carries namespace=forecast besides the canary one: the queries must not
    change if it is left out (the pod regex excludes <target>-primary-*)."""
    prom = live["prom"]
    q = fill(template_query(live["documents"], "error-ratio"), namespace=NAMESPACE, target=TARGET, interval=INTERVAL)
    denominator = q.split("\n/\n")[1]
    only_canary = denominator.replace(f'pod=~"{TARGET}-[0-9a-zA-Z]+(-[0-9a-zA-Z]+)"', f'pod="{HEALTHY[1]}"')
    at = time.time()
    assert prom.scalar(denominator, at) == pytest.approx(prom.scalar(only_canary, at))
    assert prom.scalar(denominator, at) > 0


def test_no_traffic_is_no_value(live):
    """No requests in the window: the template returns nothing, which Flagger counts as a failed check."""
    assert evaluate(live, "error-ratio", "forecast-nobody") is None


def test_alert_expressions_on_live_data(live, render):
    rule = find(docs(render("default")), "PrometheusRule")
    rules = {r["alert"]: r["expr"] for g in rule["spec"]["groups"] for r in g["rules"]}
    prom = live["prom"]
    for expr in rules.values():
        prom.query(expr)  # every expression is valid PromQL
    assert prom.query(rules["HighErrorRate"]) == []
    assert prom.query(rules["HighErrorRate"].replace(f'namespace="{NAMESPACE}"', f'namespace="{FAULTY[0]}"'))
    assert prom.query(rules["HighLatency"].replace(f'namespace="{NAMESPACE}"', f'namespace="{SLOW[0]}"'))


def test_dashboard_queries_are_valid_promql(live):
    dash = json.loads((REPO / "helm/neuro-divergent/dashboards/neuro-divergent.json").read_text())
    for panel in dash["panels"]:
        for target in panel["targets"]:
            expr = (target["expr"].replace("$__rate_interval", "1m")
                    .replace("$rust_workload", TARGET).replace("$python_workload", "neuralforecast-python"))
            live["prom"].query(expr)
    rust_p99 = ('histogram_quantile(0.99, sum by (le) '
                '(rate(neuro_divergent_http_request_duration_seconds_bucket{route="/predict"}[1m])))')
    assert live["prom"].query(rust_p99)


def test_chart_metric_names_are_served(live, render):
    body = httpx.get(f"http://127.0.0.1:{live['ports']['healthy']}/metrics", timeout=5).text
    served = set(re.findall(r"^(neuro_divergent_[a-z_]+)", body, re.M))
    served |= {re.sub(r"_(bucket|sum|count)$", "", n) for n in served}
    used = set(re.findall(r"\bneuro_divergent_[a-z_]+", render("canary")))
    used.discard("neuro_divergent_http_requests_per_second")  # the adapter's metric (helm/README.md)
    assert used <= served, used - served


def test_load_test_webhook_command_runs(live, tools):
    """The Canary's load-test cmd, pointed at the local service, as Flagger's load tester runs it (sh -c)."""
    canary = find(live["documents"], "Canary")
    cmd = next(w for w in canary["spec"]["analysis"]["webhooks"] if w["name"] == "load-test")["metadata"]["cmd"]
    local = re.sub(r"'http://[^']+/predict", f"'http://127.0.0.1:{live['ports']['primary']}/predict", cmd)
    local = local.replace("-z 1m -q 10 -c 2", "-n 20 -c 2").replace("hey ", f"{tools['HEY']} ", 1)
    assert local != cmd and "-z" not in local
    r = subprocess.run(["sh", "-c", local], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stderr
    assert re.search(r"\[200\]\s+20 responses", r.stdout), r.stdout
