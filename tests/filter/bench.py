"""Cost of the filter in Envoy (a benchmark, not a test).

Four Envoys (--concurrency 2) run side by side in front of one fixed upstream
(a fifth Envoy answering /predict with a canned body, so the upstream costs
the measured Envoys nothing): no Wasm filter, the minimal filter that sets one
header, nd_filter with mirroring off, nd_filter mirroring every request.
Rounds are interleaved; each round sends the same load to each Envoy with hey
(or wrk) and reads the Envoy's CPU time from /proc. Reported per variant:
median requests/s, median Envoy CPU us per request, and the cost over no filter.

    python tests/filter/bench.py [--rounds 5] [--requests 20000] [--concurrency 20] [--tool hey|wrk]

Needs hey / wrk (Debian packages) and the .wasm files (wasm-filter/build.sh).
"""

import argparse
import concurrent.futures
import json
import random
import re
import statistics
import subprocess
import tempfile
import time
from pathlib import Path

import harness
import upstream


class Fixed:
    """An Envoy that answers every request with the canned prediction."""

    def __init__(self, workdir):
        body = json.dumps(upstream.PREDICTION)
        cfg = {
            "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
            "static_resources": {"listeners": [{
                "name": "fixed",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                                  "HttpConnectionManager"),
                        "stat_prefix": "fixed",
                        "route_config": {"virtual_hosts": [{"name": "all", "domains": ["*"], "routes": [{
                            "match": {"prefix": "/"},
                            "direct_response": {"status": 200, "body": {"inline_string": body}},
                            "response_headers_to_add": [
                                {"header": {"key": "content-type", "value": "application/json"}}],
                        }]}]},
                        "http_filters": [{"name": "envoy.filters.http.router", "typed_config": {
                            "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                    }}]}],
            }]},
        }
        self.envoy = harness.Envoy(cfg, workdir, concurrency=1)
        port = int(self.envoy.url.rsplit(":", 1)[1])
        self.backends = [harness.ExternalBackend("python", f"http://127.0.0.1:{port}"),
                         harness.ExternalBackend("rust", f"http://127.0.0.1:{port}")]


def cpu_seconds(pid):
    """CPU time of all the process's threads, ns resolution (schedstat)."""
    total = 0
    for task in Path(f"/proc/{pid}/task").iterdir():
        try:
            total += int((task / "schedstat").read_text().split()[0])
        except (FileNotFoundError, ProcessLookupError):
            pass  # a thread that just ended
    return total / 1e9


def load(tool, url, body_file, n, c, seconds, qps=0):
    if tool == "hey":
        rate = ["-q", str(qps)] if qps else []
        out = subprocess.run(["hey", "-n", str(n), "-c", str(c), *rate, "-m", "POST", "-T", "application/json",
                              "-D", body_file, url], capture_output=True, text=True, check=True).stdout
        rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
        ok = sum(int(x) for x in re.findall(r"\[200\]\s+(\d+) responses", out))
        return rps, ok
    lua = Path(body_file).with_suffix(".lua")
    lua.write_text('wrk.method = "POST"\nwrk.headers["Content-Type"] = "application/json"\n'
                   f'wrk.body = [[{Path(body_file).read_text()}]]\n')
    out = subprocess.run(["wrk", "-t1", f"-c{c}", f"-d{seconds}s", "-s", str(lua), url],
                         capture_output=True, text=True, check=True).stdout
    rps = float(re.search(r"Requests/sec:\s+([\d.]+)", out).group(1))
    total = int(re.search(r"(\d+) requests in", out).group(1))
    bad = re.search(r"Non-2xx or 3xx responses: (\d+)", out)
    return rps, total - (int(bad.group(1)) if bad else 0)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--rounds", type=int, default=5)
    ap.add_argument("--requests", type=int, default=20000)
    ap.add_argument("--concurrency", type=int, default=20)
    ap.add_argument("--seconds", type=int, default=8, help="wrk duration per run")
    ap.add_argument("--tool", choices=["hey", "wrk"], default="hey")
    ap.add_argument("--qps", type=int, default=0,
                    help="hey -q: rate limit per connection (0 = saturate); a fixed rate gives steadier CPU/request")
    ap.add_argument("--json", help="also write the results here")
    ap.add_argument("--simultaneous", action="store_true",
                    help="load all variants at once (use with --qps): steadier on a shared machine")
    ap.add_argument("--direct", action="store_true",
                    help="routes answer with direct_response in the measured Envoy (no upstream hop; "
                         "mirroring still calls the fixed upstream)")
    ap.add_argument("--status-floor", action="store_true",
                    help="add the minimal filter that also reads :status (nd_filter's one extra hostcall)")
    ap.add_argument("--mirror-share", type=int, default=10000, help="share_bp of the mirroring variant")
    ap.add_argument("--control", action="store_true", help="add a second no-filter Envoy (noise floor)")
    ap.add_argument("--breaker-off", action="store_true", help="add nd_filter with the breaker disabled")
    ap.add_argument("--shaped", action="store_true",
                    help="add nd_filter mirroring with an API profile's answer shape (shadow.answer: the "
                         "comparator that reads any shape, on the same canned answer)")
    args = ap.parse_args()

    workdir = Path(tempfile.mkdtemp(prefix="nd-bench-"))
    body_file = workdir / "body.json"
    body_file.write_text(json.dumps({"df": [{"unique_id": "s1", "ds": f"2024-01-{d:02d}", "y": 100.0 + d}
                                            for d in range(1, 29)]}))
    fixed = Fixed(workdir)
    py, rs = fixed.backends
    # Weight 0: every variant sends its traffic to the same cluster (the minimal
    # filter routes all to python), so upstream connection pools are alike and
    # only the filter differs. The split itself costs the same at any weight.
    plugin = harness.filter_config(py, rs, rust_weight_bp=0)
    variants = {
        "no filter": [],
        "minimal wasm (sets 1 header)": [harness.wasm_filter("", wasm=harness.MINIMAL_WASM)],
        "nd_filter, mirroring off": [harness.wasm_filter(plugin)],
        "nd_filter, mirroring on": [harness.wasm_filter({**plugin, "shadow": {"share_bp": args.mirror_share}})],
    }
    if args.status_floor:
        variants["minimal wasm + reads :status"] = [harness.wasm_filter("read-status", wasm=harness.MINIMAL_WASM)]
    if args.control:
        # A second identical no-filter Envoy: its "cost" is the noise floor.
        variants["no filter (control copy)"] = []
    if args.breaker_off:
        variants["nd_filter, mirroring off, breaker off"] = [
            harness.wasm_filter({**plugin, "breaker": {"enabled": False}})]
    if args.shaped:
        # Not the default shape (model_at ""), so the filter takes the shaped
        # comparator rather than its streaming one, on the same body.
        answer = {"at": "/predictions", "orient": "records", "id": "unique_id", "time": "ds", "model_at": ""}
        variants["nd_filter, mirroring on, shaped answer"] = [
            harness.wasm_filter({**plugin, "shadow": {"share_bp": args.mirror_share, "answer": answer}})]
    envoys = {}
    try:
        for name, filters in variants.items():
            boot = harness.bootstrap([py, rs], filters, stats_flush_interval="5s")
            if args.direct:
                # Answer from the measured Envoy itself (no upstream hop): the
                # Wasm share of the per-request cost is larger, the comparison sharper.
                hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
                for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
                    route.pop("route")
                    route["direct_response"] = {"status": 200,
                                                "body": {"inline_string": json.dumps(upstream.PREDICTION)}}
            envoys[name] = harness.Envoy(boot, workdir)
        for e in envoys.values():  # warm up: V8 tiers up, connections open
            load(args.tool, e.url + "/predict", str(body_file), 2000, args.concurrency, 2)
        rows = {name: [] for name in variants}
        order = list(envoys.items())
        shuffle = random.Random(7).shuffle
        for r in range(args.rounds):
            if args.simultaneous:
                # All variants under the same fixed-rate load at the same time:
                # background load on a shared machine hits them alike.
                before = {name: cpu_seconds(e.proc.pid) for name, e in order}
                with concurrent.futures.ThreadPoolExecutor(len(order)) as pool:
                    futures = {name: pool.submit(load, args.tool, e.url + "/predict", str(body_file), args.requests,
                                                 args.concurrency, args.seconds, args.qps) for name, e in order}
                    done = {name: f.result() for name, f in futures.items()}
                for name, e in order:
                    cpu = cpu_seconds(e.proc.pid) - before[name]
                    rps, ok = done[name]
                    rows[name].append((rps, 1e6 * cpu / max(ok, 1), ok))
                    print(f"round {r + 1} {name:38s} {rps:9.0f} req/s {1e6 * cpu / max(ok, 1):7.1f} us CPU/req",
                          flush=True)
                continue
            shuffle(order)  # no variant always runs first or right after another
            for name, e in order:
                before = cpu_seconds(e.proc.pid)
                rps, ok = load(args.tool, e.url + "/predict", str(body_file), args.requests,
                               args.concurrency, args.seconds, args.qps)
                cpu = cpu_seconds(e.proc.pid) - before
                rows[name].append((rps, 1e6 * cpu / max(ok, 1), ok))
                print(f"round {r + 1} {name:38s} {rps:9.0f} req/s {1e6 * cpu / max(ok, 1):7.1f} us CPU/req", flush=True)
        shadow = envoys["nd_filter, mirroring on"]
        time.sleep(1.5)
        matches = shadow.metric("nd_filter_shadow_results_total", target="rust", result="match") + \
            shadow.metric("nd_filter_shadow_results_total", target="python", result="match")
        sent = shadow.metric("nd_filter_shadow_sent_total", target="rust") + \
            shadow.metric("nd_filter_shadow_sent_total", target="python")
        skipped = sum(v for (n, _), v in shadow.metrics().items() if n == "nd_filter_shadow_skipped_total")
        shaped = envoys.get("nd_filter, mirroring on, shaped answer")
        shaped_matches = None if shaped is None else sum(
            shaped.metric("nd_filter_shadow_results_total", target=t, result="match") for t in ("rust", "python"))
    finally:
        for e in envoys.values():
            e.stop()
        fixed.envoy.stop()

    # Costs are paired per round (variant minus no filter in the same round),
    # then the median over rounds: slow background load cancels out.
    none = rows["no filter"]
    extra = {name: statistics.median(x[1] - b[1] for x, b in zip(xs, none)) for name, xs in rows.items()}
    minimal = extra["minimal wasm (sets 1 header)"]
    print(f"\n{args.tool}, {args.rounds} rounds x {args.requests if args.tool == 'hey' else str(args.seconds) + 's'}, "
          f"-c {args.concurrency}{f' -q {args.qps}' if args.qps else ''}"
          f"{', variants loaded simultaneously' if args.simultaneous else ''}"
          f"{', direct_response (no upstream hop)' if args.direct else ''}, Envoy --concurrency 2, medians")
    print(f"{'variant':38s} {'req/s':>8s} {'CPU us/req':>11s} {'+us over none':>14s} {'vs minimal':>11s}")
    result = {}
    for name, xs in rows.items():
        rps = statistics.median(x[0] for x in xs)
        cpu = statistics.median(x[1] for x in xs)
        ratio = extra[name] / minimal if minimal > 0 else float("nan")
        result[name] = {"rps": rps, "cpu_us_per_request": cpu, "extra_us": extra[name], "vs_minimal": ratio,
                        "rounds": xs}
        print(f"{name:38s} {rps:8.0f} {cpu:11.1f} {extra[name]:14.1f} {ratio:11.2f}")
    print(f"mirroring on (share_bp {args.mirror_share}): {sent:.0f} shadow calls, {matches:.0f} matches, "
          f"{skipped:.0f} skipped")
    if shaped_matches is not None:
        print(f"shaped answer: {shaped_matches:.0f} matches")
    if args.json:
        Path(args.json).write_text(json.dumps(result, indent=1))


if __name__ == "__main__":
    main()
