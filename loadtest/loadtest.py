"""`make loadtest`: hey scenarios on the same request body against the mesh,
a Markdown report and PNG charts in loadtest/results/.

    python -m loadtest.loadtest [--duration 10s] [-c 4] [-q QPS_PER_WORKER]
                                [--scenarios python-direct,envoy-rust-100,...] [--state FILE | --own]
    python -m loadtest.loadtest --list                     # each scenario's hey command
    python -m loadtest.loadtest --flagger-cmd URL          # the same load as Flagger's webhook cmd

Scenarios (every one: hey -z D -c C [-q Q] -m POST -T application/json
-D examples/predict-request.json 'URL/predict?model=mlp_d_standard'):

  python-direct        the Python service, no Envoy
  rust-direct          the Rust service, no Envoy
  envoy-rust-0         through Envoy + filter, rust_weight_bp 0 (all Python)
  envoy-rust-10        ... 1000 bp
  envoy-rust-50        ... 5000 bp
  envoy-rust-100       ... 10000 bp (all Rust)
  envoy-mirror         weight 0 with mirroring on: every Python answer also
                       asked of Rust and compared (shadow.share_bp 10000)

Per scenario: requests/s, p50/p90/p99 (hey), failed requests (non-200 +
transport errors), which service answered (from their own /metrics), the
peak RSS of each mesh process sampled every 0.5 s, and for mirroring the
comparisons' outcome. Headline: through the mesh at 100% Rust vs Python
direct under the same hey load, throughput ratio and p99 ratio.

It runs on the mesh `make run` started when one is running (its filter
configuration is restored at the end), otherwise (or with --own) it starts
its own on ephemeral ports and stops it afterwards.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import threading
import time
from pathlib import Path

from . import hey
from .mesh import STATE_FILE, Mesh

RESULTS = Path(__file__).resolve().parent / "results"

# name -> (target, filter overrides or None for a direct call, description)
SCENARIOS = {
    "python-direct": ("python", None, "Python service direct"),
    "rust-direct": ("rust", None, "Rust service direct"),
    "envoy-rust-0": ("client", {"rust_weight_bp": 0, "shadow": {"share_bp": 0}}, "Envoy, Rust weight 0%"),
    "envoy-rust-10": ("client", {"rust_weight_bp": 1000, "shadow": {"share_bp": 0}}, "Envoy, Rust weight 10%"),
    "envoy-rust-50": ("client", {"rust_weight_bp": 5000, "shadow": {"share_bp": 0}}, "Envoy, Rust weight 50%"),
    "envoy-rust-100": ("client", {"rust_weight_bp": 10000, "shadow": {"share_bp": 0}}, "Envoy, Rust weight 100%"),
    "envoy-mirror": ("client", {"rust_weight_bp": 0, "shadow": {"share_bp": 10000, "direction": "python_to_rust"}},
                     "Envoy, weight 0%, mirroring 100% to Rust"),
}
PROCS = ("python", "rust", "envoy", "prometheus")


class RssSampler(threading.Thread):
    def __init__(self, mesh: Mesh, period=0.5):
        super().__init__(daemon=True)
        self.mesh, self.period = mesh, period
        self.peak: dict[str, float] = {}
        self._halt = threading.Event()

    def run(self):
        while not self._halt.is_set():
            for k, v in self.mesh.rss_mb().items():
                self.peak[k] = max(self.peak.get(k, 0.0), v)
            self._halt.wait(self.period)

    def stop(self):
        self._halt.set()
        self.join()
        return self.peak


def shadow_counts(mesh: Mesh) -> dict:
    out: dict[str, float] = {}
    for (name, labels), v in mesh.envoy_metrics().items():
        if name == "nd_filter_shadow_results_total":
            out[dict(labels).get("result", "?")] = out.get(dict(labels).get("result", "?"), 0) + v
    return out


def scenario_cmd(mesh: Mesh, name: str, duration: str, c: int, q: float | None) -> list[str]:
    target = SCENARIOS[name][0]
    return hey.command(hey.predict_url(mesh.url(target)), duration=duration, c=c, q=q)


def run_scenario(mesh: Mesh, name: str, duration: str, c: int, q: float | None, warmup: str, log=print) -> dict:
    target, overrides, desc = SCENARIOS[name]
    if overrides is not None:
        mesh.set_config(**overrides)
    if warmup:
        hey.run(hey.command(hey.predict_url(mesh.url(target)), duration=warmup, c=c, q=q))
    before = {s: mesh.predictions(s) for s in ("python", "rust")}
    shadow_before = shadow_counts(mesh)
    cmd = scenario_cmd(mesh, name, duration, c, q)
    sampler = RssSampler(mesh)
    sampler.start()
    try:
        res = hey.run(cmd)
    finally:
        peak = sampler.stop()
    time.sleep(0.5)  # filter counters reach Envoy's stats every 200 ms
    after = {s: mesh.predictions(s) for s in ("python", "rust")}
    served = {s: after[s] - before[s] for s in after}
    shadow_after = shadow_counts(mesh)
    shadow = {k: shadow_after.get(k, 0) - shadow_before.get(k, 0) for k in set(shadow_after) | set(shadow_before)}
    shadow = {k: v for k, v in shadow.items() if v}
    res.pop("raw")  # hey's output: not in the report
    out = {
        "scenario": name, "description": desc, "target": target, "filter": overrides,
        "hey": shlex.join(["hey", *cmd[1:]]).replace(str(hey.REPO) + "/", ""),
        **res,
        "served": served,
        # which service answered the client (shadow calls excluded)
        "rust_share": (served["rust"] / (served["rust"] + served["python"])
                       if overrides is not None and not shadow and served["rust"] + served["python"] else None),
        "shadow": shadow or None,
        "rss_mb": peak,
    }
    lat = res["latency_ms"]
    log(f"  {name:<16} {res['rps']:9.1f} req/s  p50 {fmt(lat.get('p50'), '7.1f')}  p90 {fmt(lat.get('p90'), '7.1f')}  "
        f"p99 {fmt(lat.get('p99'), '7.1f')} ms  failed {res['failed']}  served {served}")
    return out


def ratios(results: dict) -> dict:
    out = {}
    py, mesh100, rs = results.get("python-direct"), results.get("envoy-rust-100"), results.get("rust-direct")
    if py and mesh100:
        out["mesh100_vs_python_throughput"] = mesh100["rps"] / py["rps"] if py["rps"] else None
        p_py, p_m = py["latency_ms"].get("p99"), mesh100["latency_ms"].get("p99")
        out["mesh100_vs_python_p99"] = p_m / p_py if p_py and p_m else None
    if rs and mesh100:
        out["mesh100_vs_rust_direct_throughput"] = mesh100["rps"] / rs["rps"] if rs["rps"] else None
        p_rs, p_m = rs["latency_ms"].get("p99"), mesh100["latency_ms"].get("p99")
        out["mesh100_vs_rust_direct_p99"] = p_m / p_rs if p_rs and p_m else None
    return out


def fmt(value, spec: str) -> str:
    """A number for the report, or "n/a" where the run could not measure it
    (hey leaves out percentiles a short run cannot fill)."""
    return "n/a" if value is None else format(value, spec)


def markdown(report: dict) -> str:
    rows = report["results"]
    lines = [
        f"# Load test {report['started']}",
        "",
        f"hey `-z {report['duration']} -c {report['c']}{' -q ' + str(report['q']) if report['q'] else ''}` on every "
        f"scenario, same body (`examples/predict-request.json`, model `mlp_d_standard`); "
        f"{report['cpus']} cores shared by hey, Envoy (--concurrency 2), both services and Prometheus; "
        f"all on 127.0.0.1.",
        "",
    ]
    r = report["ratios"]
    if "mesh100_vs_python_throughput" in r:
        lines += [
            "**Through the mesh at 100% Rust vs Python direct, same load:** "
            f"throughput x{fmt(r['mesh100_vs_python_throughput'], '.1f')}, "
            f"p99 x{fmt(r['mesh100_vs_python_p99'], '.3f')} "
            f"({rows['envoy-rust-100']['rps']:.0f} vs {rows['python-direct']['rps']:.0f} req/s, "
            f"p99 {fmt(rows['envoy-rust-100']['latency_ms'].get('p99'), '.1f')} vs "
            f"{fmt(rows['python-direct']['latency_ms'].get('p99'), '.1f')} ms).",
            "",
        ]
    if "mesh100_vs_rust_direct_throughput" in r:
        lines += [
            f"Envoy + filter in front of Rust vs Rust direct: "
            f"throughput x{fmt(r['mesh100_vs_rust_direct_throughput'], '.2f')}, "
            f"p99 x{fmt(r['mesh100_vs_rust_direct_p99'], '.2f')}.",
            "",
        ]
    lines += [
        "| scenario | req/s | p50 ms | p90 ms | p99 ms | errors | answered by Python / Rust | "
        "RSS MB python | rust | envoy | prometheus |",
        "|---|---:|---:|---:|---:|---:|---|---:|---:|---:|---:|",
    ]
    for x in rows.values():
        lat, rss = x["latency_ms"], x["rss_mb"]
        served = f"{x['served']['python']:.0f} / {x['served']['rust']:.0f}"
        if x.get("shadow"):
            compared = ", ".join(f"{k} {v:.0f}" for k, v in sorted(x["shadow"].items()))
            served += f" (Rust's count includes the shadow calls; compared: {compared})"
        lines.append(
            f"| {x['description']} | {x['rps']:.1f} | {fmt(lat.get('p50'), '.1f')} | {fmt(lat.get('p90'), '.1f')} | "
            f"{fmt(lat.get('p99'), '.1f')} | {x['failed']} | {served} | "
            + " | ".join(f"{rss.get(p, 0):.0f}" for p in PROCS) + " |")
    lines += [
        "",
        "RSS: peak VmRSS of each process sampled every 0.5 s during the scenario. "
        "errors: non-200 answers plus transport errors, as hey counted them.",
        "",
        f"![latency]({Path(report['charts']['latency']).name})",
        "",
        f"![throughput]({Path(report['charts']['throughput']).name})",
        "",
        "Commands (the URL is the mesh's; `loadtest.hey.flagger_cmd` gives the inline-body form Flagger's "
        "load tester runs):",
        "",
    ]
    lines += [f"- {name}: `{x['hey']}`" for name, x in rows.items()]
    return "\n".join(lines) + "\n"


def charts(report: dict, stem: Path) -> dict:
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    rows = report["results"]
    names = list(rows)
    labels = [rows[n]["description"].replace(", ", ",\n") for n in names]
    x = range(len(names))
    fig, ax = plt.subplots(figsize=(11, 5))
    width = 0.27
    for i, (p, color) in enumerate((("p50", "#4c72b0"), ("p90", "#dd8452"), ("p99", "#c44e52"))):
        vals = [rows[n]["latency_ms"].get(p, 0) for n in names]
        bars = ax.bar([k + (i - 1) * width for k in x], vals, width, label=p, color=color)
        ax.bar_label(bars, labels=[f"{v:.1f}" for v in vals], fontsize=7, rotation=90, padding=2)
    ax.set_yscale("log")
    ax.set_ylabel("latency (ms, log scale)")
    ax.set_title(f"Latency percentiles per scenario (hey -z {report['duration']} -c {report['c']})")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.legend(loc="upper left", bbox_to_anchor=(1.0, 1.0))
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    lat_path = stem.with_name(stem.name + "-latency.png")
    fig.savefig(lat_path, dpi=110)
    plt.close(fig)

    fig, ax = plt.subplots(figsize=(11, 5))
    vals = [rows[n]["rps"] for n in names]
    colors = ["#55a868" if rows[n]["failed"] == 0 else "#c44e52" for n in names]
    bars = ax.bar(list(x), vals, color=colors)
    ax.bar_label(bars, labels=[f"{v:.0f}" + (f"\n{rows[n]['failed']} err" if rows[n]["failed"] else "")
                               for v, n in zip(vals, names)], fontsize=8)
    ax.set_yscale("log")
    ax.set_ylabel("requests/s (log scale)")
    ax.set_title("Throughput per scenario (red: some requests failed)")
    ax.set_xticks(list(x), labels, fontsize=8)
    ax.grid(axis="y", alpha=0.3)
    fig.tight_layout()
    thr_path = stem.with_name(stem.name + "-throughput.png")
    fig.savefig(thr_path, dpi=110)
    plt.close(fig)
    return {"latency": str(lat_path), "throughput": str(thr_path)}


def main(argv=None) -> int:
    import os

    p = argparse.ArgumentParser(prog="python -m loadtest.loadtest", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--duration", default="10s", help="hey -z per scenario")
    p.add_argument("-c", type=int, default=4, help="hey workers (connections)")
    p.add_argument("-q", type=float, default=None, help="hey rate limit per worker (default: none, closed loop)")
    p.add_argument("--warmup", default="1s", help="unrecorded hey run before each scenario ('' for none)")
    p.add_argument("--scenarios", default=",".join(SCENARIOS))
    p.add_argument("--state", help="the running mesh's state file (default: make run's, "
                                   "when a mesh is running; otherwise one is started)")
    p.add_argument("--own", action="store_true", help="start a mesh of its own (ephemeral ports)")
    p.add_argument("--out", default=str(RESULTS), help="report directory")
    p.add_argument("--list", action="store_true", help="print each scenario's hey command and exit")
    p.add_argument("--flagger-cmd", metavar="URL", help="print Flagger's load-test cmd for URL and exit")
    a = p.parse_args(argv)
    if a.flagger_cmd:
        print(hey.flagger_cmd(a.flagger_cmd, f"-z {a.duration} -c {a.c}" + (f" -q {a.q:g}" if a.q else "")))
        return 0
    names = [s for s in a.scenarios.split(",") if s]
    unknown = [s for s in names if s not in SCENARIOS]
    if unknown:
        p.error(f"unknown scenario(s) {unknown}; known: {', '.join(SCENARIOS)}")
    if a.list:
        for n in names:
            t, o, d = SCENARIOS[n]
            url = {"python": "http://127.0.0.1:8000", "rust": "http://127.0.0.1:8080", "client": "http://127.0.0.1:10000"}[t]
            cfg = f"   # filter: {json.dumps(o)}" if o else ""
            cmd = shlex.join(["hey", *hey.command(hey.predict_url(url), duration=a.duration, c=a.c, q=a.q)[1:]])
            print(f"{n}: {cmd.replace(str(hey.REPO) + '/', '')}{cfg}")
        return 0
    out = Path(a.out)
    out.mkdir(parents=True, exist_ok=True)
    state = Path(a.state) if a.state else STATE_FILE
    owned = a.own or not state.exists()
    try:
        if owned:
            print("loadtest: no running mesh (`make run`): starting one on ephemeral ports")
            mesh = Mesh(ephemeral=True).start()
        else:
            mesh = Mesh.attach(state)
            print(f"loadtest: on the running mesh ({state}): client {mesh.client_url}")
    except RuntimeError as e:
        print(f"loadtest: {e}", file=sys.stderr)
        return 2
    original = json.loads(json.dumps(mesh.plugin_config))
    started = time.strftime("%Y-%m-%dT%H:%M:%S")
    results = {}
    try:
        print(f"loadtest: {len(names)} scenarios, hey -z {a.duration} -c {a.c}" + (f" -q {a.q:g}" if a.q else ""))
        for n in names:
            results[n] = run_scenario(mesh, n, a.duration, a.c, a.q, a.warmup)
    finally:
        if owned:
            mesh.stop()
        else:
            mesh.set_config(**original)
    stem = out / f"loadtest-{time.strftime('%Y%m%dT%H%M%S')}"
    report = {"started": started, "duration": a.duration, "c": a.c, "q": a.q, "cpus": os.cpu_count(),
              "results": results, "ratios": ratios(results)}
    report["charts"] = charts(report, stem)
    md = stem.with_suffix(".md")
    md.write_text(markdown(report))
    stem.with_suffix(".json").write_text(json.dumps(report, indent=1))
    print(f"loadtest: report {md}\n          charts {report['charts']['latency']}, {report['charts']['throughput']}")
    for k, v in report["ratios"].items():
        print(f"  {k}: {v:.3f}" if v is not None else f"  {k}: n/a")
    failed = sum(r["failed"] for r in results.values())
    return 0 if failed == 0 else 1


if __name__ == "__main__":
    sys.exit(main())
