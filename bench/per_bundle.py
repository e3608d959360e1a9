"""Per bundle: end-to-end /predict latency with hey, and memory per loaded bundle.

Run: V=$(scripts/python-env.sh); $V/bin/python bench/per_bundle.py   (make bench-bundles)
Options: --only a,b   a subset of bundles;  --quick   fewer requests and repetitions.

1. Latency. ONE release service (target/release/neuro-divergent serve) on all of
   tests/fixtures/bundles, 127.0.0.1, a free port, started and stopped by PID.
   For every bundle its first golden case (tests/fixtures/cases/<bundle>__*.json,
   sorted by name) is the body, ?model=<bundle>. One request is checked by hand
   (200, right "model"), then hey -o csv: a warm-up, -n 2000 -c 1, -n 4000 -c 4.
   Every request must come back 200 (hey's csv has one row per answered request
   with its status; a missing row is a transport error).
   hey prints times with 4 decimals (0.1 ms steps) and these requests take
   ~0.1-0.3 ms, so the p50/p99 reported are interpolated inside hey's 0.1 ms
   bins (values round to nearest: bin v = [v-0.05, v+0.05) ms, uniform inside,
   as Prometheus' histogram_quantile); the raw hey percentiles are in the JSON.
   req/s = requests / (last offset + its response time). The server's own mean
   pipeline time per bundle (neuro_divergent_prediction_duration_seconds
   _sum/_count, full precision) is reported beside it.

2. Memory. Fresh services (EAGER_LOAD=true, RELOAD_INTERVAL_MS=0, LOG_LEVEL=warn),
   each on a temp model dir holding 1 copy, or N copies (default 64,
   <bundle>_c00 ..), of ONE bundle; /ready awaited, /metrics read
   (neuro_divergent_model_memory_bytes{bundle=...}: every copy must be
   loaded), then VmRSS / RssAnon / RssFile from /proc/PID/status.
   Memory per loaded bundle = (RSS with N copies - RSS with 1) / (N - 1).
   Why not simply "one bundle minus an empty dir": the first bundle loaded
   faults in ~0.5 MB of the binary's own code pages (RssFile: loader, JSON,
   model code) plus one-time heap state, and VmRSS moves by ~0.1-0.4 MB
   between identical starts (fault-around on the binary), both far larger
   than a 2-173 KB bundle. That literal measure is still recorded
   (first_delta: one copy minus an empty dir; the empty-dir service waits
   for /health, since with eager load and no bundle /ready stays 503; an
   empty dir rather than one tiny bundle so nothing of a bundle is in the
   baseline). Medians of --reps starts, repetitions interleaved (rep 1 of
   everything, then rep 2 ...), with glibc's default malloc and with
   MALLOC_ARENA_MAX=1 (the initial load runs on a tokio blocking thread, in
   a glibc thread arena). The biggest bundles are also run with 128 copies.

3. Writes bench/results/per_bundle.md and bench/results/per_bundle.json, prints
   a summary. Bounded: hey -n, per-request timeout, every wait has a deadline;
   about 3-5 minutes on the 2-core project machine.
"""

from __future__ import annotations

import argparse
import csv
import io
import json
import os
import platform
import shutil
import signal
import socket
import statistics
import struct
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from datetime import UTC, datetime
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]
BIN = Path(os.environ.get("ND_BIN", REPO / "target" / "release" / "neuro-divergent"))
BUNDLES = REPO / "tests" / "fixtures" / "bundles"
CASES = REPO / "tests" / "fixtures" / "cases"
OUT = REPO / "bench" / "results"

HEY_TIMEOUT_S = 120  # wall-clock bound for one hey run (subprocess timeout)
READY_TIMEOUT_S = 20.0
STOP_TIMEOUT_S = 10.0
AIM_RATIO = 1.5


# ------------------------------------------------------------------ helpers

def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def http(method: str, url: str, body: bytes | None = None, timeout: float = 5.0) -> tuple[int, bytes]:
    req = urllib.request.Request(url, data=body, method=method,
                                 headers={"content-type": "application/json"} if body else {})
    try:
        with urllib.request.urlopen(req, timeout=timeout) as r:
            return r.status, r.read()
    except urllib.error.HTTPError as e:
        return e.code, e.read()


class Service:
    """The release binary on 127.0.0.1:<free port>, stopped by its PID."""

    def __init__(self, model_path: Path, extra_env: dict[str, str] | None = None, wait: str = "/ready"):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        env = dict(os.environ)
        env.update({"RELOAD_INTERVAL_MS": "0", "EAGER_LOAD": "true"})
        env.update(extra_env or {})
        cmd = [str(BIN), "serve", "--model-path", str(model_path), "--host", "127.0.0.1", "--port", str(self.port)]
        self.proc = None
        for attempt in range(6):  # the binary may be being rebuilt by someone else: retry
            try:
                self.proc = subprocess.Popen(cmd, cwd=REPO, env=env, stdin=subprocess.DEVNULL,
                                             stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL,
                                             start_new_session=True)
            except OSError as e:  # ETXTBSY, ENOENT while the linker writes it
                sys.stderr.write(f"start failed ({e}); retrying\n")
                time.sleep(3)
                continue
            if self._wait(wait):
                return
            self.stop()
            sys.stderr.write(f"service on {model_path} not ready (attempt {attempt + 1}); retrying\n")
            time.sleep(3)
        raise SystemExit(f"service on {model_path} never became ready")

    def _wait(self, path: str) -> bool:
        deadline = time.monotonic() + READY_TIMEOUT_S
        while time.monotonic() < deadline:
            if self.proc.poll() is not None:
                return False
            try:
                if http("GET", self.url + path, timeout=1.0)[0] == 200:
                    return True
            except OSError:
                pass
            time.sleep(0.005)
        return False

    @property
    def pid(self) -> int:
        return self.proc.pid

    def status(self) -> dict[str, int]:
        """VmRSS, RssAnon, RssFile, VmHWM in bytes."""
        out = {}
        for line in Path(f"/proc/{self.pid}/status").read_text().splitlines():
            key, _, rest = line.partition(":")
            if key in ("VmRSS", "RssAnon", "RssFile", "VmHWM"):
                out[key] = int(rest.split()[0]) * 1024
        return out

    def metrics(self) -> str:
        code, body = http("GET", self.url + "/metrics")
        if code != 200:
            raise RuntimeError(f"/metrics answered {code}")
        return body.decode()

    def stop(self) -> None:
        if self.proc is None or self.proc.poll() is not None:
            return
        os.kill(self.proc.pid, signal.SIGTERM)
        try:
            self.proc.wait(timeout=STOP_TIMEOUT_S)
        except subprocess.TimeoutExpired:
            os.kill(self.proc.pid, signal.SIGKILL)
            self.proc.wait()

    def __enter__(self):
        return self

    def __exit__(self, *exc):
        self.stop()


def metric_values(text: str, name: str) -> dict[str, float]:
    """{bundle label: value} for one metric name (exact, not its suffixes)."""
    out = {}
    for line in text.splitlines():
        if not line.startswith(name + "{"):
            continue
        labels, _, value = line.rpartition(" ")
        bundle = labels.split('bundle="', 1)[1].split('"', 1)[0] if 'bundle="' in labels else ""
        out[bundle] = float(value)
    return out


def model_classes(bundle_dir: Path) -> list[str]:
    """model_class from each model file's safetensors metadata, in file order."""
    classes = []
    for f in sorted(bundle_dir.glob("*.safetensors")):
        if f.name in ("configuration.safetensors", "dataset.safetensors"):
            continue
        with open(f, "rb") as fh:
            (n,) = struct.unpack("<Q", fh.read(8))
            header = json.loads(fh.read(n))
        classes.append(header.get("__metadata__", {}).get("model_class", "?"))
    return classes


def first_case(bundle: str) -> tuple[str, dict]:
    files = sorted(CASES.glob(f"{bundle}__*.json"))
    if not files:
        raise SystemExit(f"no golden case for bundle {bundle}")
    case = json.loads(files[0].read_text())
    assert case["bundle"] == bundle, (files[0], case["bundle"])
    return files[0].stem, case


def interp_quantile(values_ms: list[float], q: float, step: float = 0.1) -> float:
    """Quantile of values rounded to `step` (hey's %4.4f seconds), interpolated
    linearly inside the bin [v - step/2, v + step/2) that holds it."""
    bins: dict[int, int] = {}
    for v in values_ms:
        k = round(v / step)
        bins[k] = bins.get(k, 0) + 1
    n = len(values_ms)
    target = q * n
    below = 0
    for k in sorted(bins):
        c = bins[k]
        if below + c >= target:
            return (k - 0.5) * step + (target - below) / c * step
        below += c
    return max(values_ms)


def raw_quantile(values: list[float], q: float) -> float:
    """hey's own rule: the value at index int(q * n) of the sorted latencies."""
    s = sorted(values)
    return s[min(len(s) - 1, int(q * len(s)))]


def hey(url: str, body_file: Path, n: int, c: int) -> dict:
    cmd = ["hey", "-n", str(n), "-c", str(c), "-t", "10", "-o", "csv", "-m", "POST",
           "-T", "application/json", "-D", str(body_file), url]
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=HEY_TIMEOUT_S, check=True).stdout
    rows = list(csv.DictReader(io.StringIO(out)))
    lat_ms = [float(r["response-time"]) * 1000 for r in rows]
    statuses: dict[str, int] = {}
    for r in rows:
        statuses[r["status-code"]] = statuses.get(r["status-code"], 0) + 1
    total_s = max(float(r["offset"]) + float(r["response-time"]) for r in rows)
    return {
        "n": n, "c": c, "answered": len(rows), "status": statuses,
        "all_200": len(rows) == n and statuses.get("200", 0) == n,
        "p50_ms": interp_quantile(lat_ms, 0.50), "p99_ms": interp_quantile(lat_ms, 0.99),
        "hey_p50_ms": raw_quantile(lat_ms, 0.50), "hey_p99_ms": raw_quantile(lat_ms, 0.99),
        "mean_ms": statistics.fmean(lat_ms), "req_s": len(rows) / total_s if total_s > 0 else None,
    }


# ------------------------------------------------------------------ 1. latency

def measure_latency(bundles: list[str], n1: int, n4: int, tmp: Path) -> dict[str, dict]:
    results = {}
    with Service(BUNDLES) as svc:
        print(f"latency: one service (pid {svc.pid}) on {BUNDLES.relative_to(REPO)}, {svc.url}", flush=True)
        rss_before = svc.status()
        for i, b in enumerate(bundles):
            case_name, case = first_case(b)
            body = json.dumps(case["request"]).encode()
            body_file = tmp / f"{b}.json"
            body_file.write_bytes(body)
            url = f"{svc.url}/predict?model={b}"
            code, resp = http("POST", url, body, timeout=10)
            ok = code == 200 and json.loads(resp).get("model") == b
            if not ok:
                raise SystemExit(f"{b}: {case_name} answered {code}: {resp[:300]!r}")
            hey(url, body_file, min(200, n1), 1)  # warm-up (connections, caches)
            m0 = metric_values(svc.metrics(), "neuro_divergent_prediction_duration_seconds_sum")
            k0 = metric_values(svc.metrics(), "neuro_divergent_prediction_duration_seconds_count")
            r1 = hey(url, body_file, n1, 1)
            m1 = metric_values(svc.metrics(), "neuro_divergent_prediction_duration_seconds_sum")
            k1 = metric_values(svc.metrics(), "neuro_divergent_prediction_duration_seconds_count")
            r4 = hey(url, body_file, n4, 4)
            dn = k1.get(b, 0) - k0.get(b, 0)
            server_us = (m1.get(b, 0) - m0.get(b, 0)) / dn * 1e6 if dn else None
            results[b] = {"case": case_name, "body_bytes": len(body), "rows": len(case["request"]["df"]),
                          "c1": r1, "c4": r4, "server_mean_us": server_us}
            flag = "" if r1["all_200"] and r4["all_200"] else "  NOT ALL 200"
            print(f"  [{i + 1:2}/{len(bundles)}] {b:26} p50 {r1['p50_ms']:.3f} ms  p99 {r1['p99_ms']:.3f} ms  "
                  f"{r1['req_s']:7.0f} req/s (c4 {r4['req_s']:7.0f})  server {server_us:6.1f} us{flag}", flush=True)
        rss_after = svc.status()
    return {"bundles": results, "service_rss_before": rss_before, "service_rss_after": rss_after}


# ------------------------------------------------------------------ 2. memory

SETTINGS = {"default": {"LOG_LEVEL": "warn"}, "arena1": {"LOG_LEVEL": "warn", "MALLOC_ARENA_MAX": "1"}}
KEYS = ("VmRSS", "RssAnon", "RssFile")


def one_sample(model_dir: Path, env: dict[str, str], expect: list[str]) -> dict:
    wait = "/ready" if expect else "/health"
    with Service(model_dir, env, wait=wait) as svc:
        gauges = metric_values(svc.metrics(), "neuro_divergent_model_memory_bytes")
        if sorted(gauges) != sorted(expect):
            raise SystemExit(f"{model_dir}: loaded {sorted(gauges)}, expected {sorted(expect)}")
        time.sleep(0.02)
        st = svc.status()
    st["gauge"] = int(sum(gauges.values()))
    return st


def link_tree(src: Path, dst: Path) -> None:
    """A copy of a bundle dir; hard links where the file system allows (the
    service read()s the files, so a link costs it exactly what a copy does)."""
    try:
        shutil.copytree(src, dst, copy_function=os.link)
    except OSError:
        shutil.rmtree(dst, ignore_errors=True)
        shutil.copytree(src, dst)


def copies_dir(root: Path, b: str, n: int) -> tuple[Path, list[str]]:
    names = [b] if n == 1 else [f"{b}_c{k:02}" for k in range(n)]
    d = root / f"{b}_x{n}"
    for name in names:
        link_tree(BUNDLES / b, d / name)
    return d, names


def measure_memory(bundles: list[str], reps: int, copies: int, big: list[str], big_copies: int,
                   big_reps: int, tmp: Path) -> dict:
    """Raw /proc samples: {setting: {"baseline": [...], (bundle, n copies): [...]}}."""
    empty = tmp / "empty"
    empty.mkdir(parents=True)
    dirs = {}
    for b in bundles:
        dirs[(b, 1)] = copies_dir(tmp, b, 1)
        dirs[(b, copies)] = copies_dir(tmp, b, copies)
    for b in big:
        dirs[(b, big_copies)] = copies_dir(tmp, b, big_copies)
    raw: dict[str, dict] = {s: {"baseline": []} for s in SETTINGS}
    t0 = time.monotonic()
    # Interleaved: repetition r of everything before repetition r + 1.
    for rep in range(reps):
        for s, env in SETTINGS.items():
            raw[s]["baseline"].append(one_sample(empty, env, []))
            for b in bundles:
                for n in (1, copies):
                    d, names = dirs[(b, n)]
                    raw[s].setdefault((b, n), []).append(one_sample(d, env, names))
            raw[s]["baseline"].append(one_sample(empty, env, []))
        print(f"memory: repetition {rep + 1}/{reps} done ({time.monotonic() - t0:.0f} s)", flush=True)
    for _rep in range(big_reps if big else 0):
        for s, env in SETTINGS.items():
            for b in big:
                d, names = dirs[(b, big_copies)]
                raw[s].setdefault((b, big_copies), []).append(one_sample(d, env, names))
    if big:
        print(f"memory: {len(big)} biggest bundles x {big_copies} copies x {big_reps} done "
              f"({time.monotonic() - t0:.0f} s)", flush=True)
    return raw


def med(xs: list[float]) -> float:
    return statistics.median(xs)


def medians(samples: list[dict]) -> dict[str, float]:
    return {k: med([x[k] for x in samples]) for k in KEYS}


def lstsq3(x0, x1, x2, ys) -> tuple[float, float, float]:
    """Least squares y = a*x0 + b*x1 + c*x2 (normal equations, Cramer's rule)."""
    X = list(zip(x0, x1, x2))
    A = [[sum(r[i] * r[j] for r in X) for j in range(3)] for i in range(3)]
    v = [sum(r[i] * y for r, y in zip(X, ys)) for i in range(3)]

    def det(m):
        return (m[0][0] * (m[1][1] * m[2][2] - m[1][2] * m[2][1]) - m[0][1] * (m[1][0] * m[2][2] - m[1][2] * m[2][0])
                + m[0][2] * (m[1][0] * m[2][1] - m[1][1] * m[2][0]))
    d = det(A)
    if d == 0:
        return 0.0, 0.0, 0.0
    out = []
    for k in range(3):
        m = [row[:] for row in A]
        for i in range(3):
            m[i][k] = v[i]
        out.append(det(m) / d)
    return out[0], out[1], out[2]


def linear_fit(xs: list[float], ys: list[float]) -> tuple[float, float]:
    """Least squares y = a + b x."""
    mx, my = statistics.fmean(xs), statistics.fmean(ys)
    sxx = sum((x - mx) ** 2 for x in xs)
    b = sum((x - mx) * (y - my) for x, y in zip(xs, ys)) / sxx if sxx else 0.0
    return my - b * mx, b


# ------------------------------------------------------------------ report

def fmt_int(x) -> str:
    return "-" if x is None or x != x else f"{int(round(x)):,}".replace(",", " ")


def main() -> None:
    ap = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    ap.add_argument("--only", help="comma-separated bundle names")
    ap.add_argument("--quick", action="store_true", help="fewer requests and repetitions (a smoke run)")
    ap.add_argument("--reps", type=int, default=5, help="memory repetitions per bundle and allocator setting")
    ap.add_argument("--n", type=int, default=2000, help="hey -n at -c 1 (twice as many at -c 4)")
    ap.add_argument("--copies", type=int, default=64, help="copies of every bundle for the per-bundle increment")
    ap.add_argument("--big", type=int, default=6, help="how many of the biggest bundles get --big-copies too")
    ap.add_argument("--big-copies", type=int, default=128)
    ap.add_argument("--out", default=str(OUT))
    args = ap.parse_args()
    if args.quick:
        args.reps, args.n, args.copies, args.big, args.big_copies = 2, 300, 8, 2, 16
    if not (BIN.is_file() and os.access(BIN, os.X_OK)):
        raise SystemExit(f"{BIN} missing: build it (make build)")
    if shutil.which("hey") is None:
        raise SystemExit("hey not found on PATH")

    all_bundles = sorted(p.name for p in BUNDLES.iterdir() if p.is_dir())
    bundles = args.only.split(",") if args.only else all_bundles
    info = {}
    for b in bundles:
        d = BUNDLES / b
        info[b] = {
            "classes": model_classes(d),
            "safetensors_bytes": sum(f.stat().st_size for f in d.glob("*.safetensors")),
        }
    big = sorted(bundles, key=lambda b: -info[b]["safetensors_bytes"])[: args.big]
    big_reps = max(1, args.reps - 2)

    started = time.monotonic()
    load_before = os.getloadavg()
    with tempfile.TemporaryDirectory(prefix="nd-per-bundle-") as t:
        tmp = Path(t)
        (tmp / "bodies").mkdir()
        lat = measure_latency(bundles, args.n, 2 * args.n, tmp / "bodies")
        raw = measure_memory(bundles, args.reps, args.copies, big, args.big_copies, big_reps, tmp / "mem")
    elapsed = time.monotonic() - started

    N = args.copies
    base = {s: medians(raw[s]["baseline"]) for s in SETTINGS}
    noise = {}
    for s in SETTINGS:
        noise[s] = {}
        for k in KEYS:
            xs = [x[k] for x in raw[s]["baseline"]]
            noise[s][k] = {"median": med(xs), "min": min(xs), "max": max(xs),
                           "mad": med([abs(x - med(xs)) for x in xs]), "samples": xs}

    rows = []
    for b in bundles:
        L = lat["bundles"][b]
        st = info[b]["safetensors_bytes"]
        r = {
            "bundle": b, "model_class": " + ".join(dict.fromkeys(info[b]["classes"])),
            "classes": info[b]["classes"], "case": L["case"], "rows": L["rows"],
            "p50_ms": L["c1"]["p50_ms"], "p99_ms": L["c1"]["p99_ms"], "req_s": L["c1"]["req_s"],
            "c4_p50_ms": L["c4"]["p50_ms"], "c4_p99_ms": L["c4"]["p99_ms"], "c4_req_s": L["c4"]["req_s"],
            "server_mean_us": L["server_mean_us"], "all_200": L["c1"]["all_200"] and L["c4"]["all_200"],
            "safetensors_bytes": st, "gauge_bytes": raw["default"][(b, 1)][0]["gauge"],
        }
        for s in SETTINGS:
            one, many = medians(raw[s][(b, 1)]), medians(raw[s][(b, N)])
            sfx = "" if s == "default" else "_" + s
            # The plain measure: one bundle vs the empty dir.
            r["first_delta" + sfx] = one["VmRSS"] - base[s]["VmRSS"]
            r["first_anon_delta" + sfx] = one["RssAnon"] - base[s]["RssAnon"]
            r["first_file_delta" + sfx] = one["RssFile"] - base[s]["RssFile"]
            # What one more loaded bundle costs: (N copies - 1 copy) / (N - 1).
            r["rss_delta" + sfx] = (many["VmRSS"] - one["VmRSS"]) / (N - 1)
            r["anon_delta" + sfx] = (many["RssAnon"] - one["RssAnon"]) / (N - 1)
            r["ratio" + sfx] = r["rss_delta" + sfx] / st
            r["anon_ratio" + sfx] = r["anon_delta" + sfx] / st
            r["first_ratio" + sfx] = r["first_delta" + sfx] / st
        rows.append(r)

    amplified = []
    for b in big:
        st = info[b]["safetensors_bytes"]
        a = {"bundle": b, "safetensors_bytes": st, "copies": args.big_copies,
             "gauge_bytes": raw["default"][(b, 1)][0]["gauge"]}
        for s in SETTINGS:
            one, many = medians(raw[s][(b, 1)]), medians(raw[s][(b, args.big_copies)])
            sfx = "" if s == "default" else "_" + s
            a["rss_delta" + sfx] = (many["VmRSS"] - one["VmRSS"]) / (args.big_copies - 1)
            a["anon_delta" + sfx] = (many["RssAnon"] - one["RssAnon"]) / (args.big_copies - 1)
            a["ratio" + sfx] = a["rss_delta" + sfx] / st
            a["anon_ratio" + sfx] = a["anon_delta" + sfx] / st
        amplified.append(a)

    p50s = [r["p50_ms"] for r in rows]
    worst = max(rows, key=lambda r: r["ratio"])
    # Where the bytes go: per-bundle RSS = a + b * models in the bundle + c * safetensors bytes,
    # least squares over the bundles that keep what they read (ratio >= 0.8; TimeMixer's files
    # hold an 80 KB positional table its forward pass never reads, and the service drops it).
    kept = [r for r in rows if r["ratio"] >= 0.8] or rows
    fit_a, fit_m, fit_b = lstsq3([1.0] * len(kept), [len(r["classes"]) for r in kept],
                                 [r["safetensors_bytes"] for r in kept], [r["rss_delta"] for r in kept])
    if len(kept) < 8:  # too few bundles (--only) for three coefficients
        fit_a = fit_m = fit_b = float("nan")
    gfit_a, gfit_b = linear_fit([r["safetensors_bytes"] for r in rows], [r["gauge_bytes"] for r in rows])
    fastest, slowest = min(rows, key=lambda r: r["p50_ms"]), max(rows, key=lambda r: r["p50_ms"])
    summary = {
        "bundles": len(rows), "all_200": all(r["all_200"] for r in rows),
        "p50_ms_min": fastest["p50_ms"], "p50_ms_min_bundle": fastest["bundle"],
        "p50_ms_median": med(p50s),
        "p50_ms_max": slowest["p50_ms"], "p50_ms_max_bundle": slowest["bundle"],
        "p99_ms_median": med([r["p99_ms"] for r in rows]), "p99_ms_max": max(r["p99_ms"] for r in rows),
        "req_s_median": med([r["req_s"] for r in rows]),
        "c4_req_s_median": med([r["c4_req_s"] for r in rows]),
        "server_mean_us_median": med([r["server_mean_us"] for r in rows]),
        "ratio_median": med([r["ratio"] for r in rows]), "ratio_worst": worst["ratio"],
        "ratio_worst_bundle": worst["bundle"],
        "ratio_best": min(r["ratio"] for r in rows),
        "ratio_median_arena1": med([r["ratio_arena1"] for r in rows]),
        "ratio_worst_arena1": max(r["ratio_arena1"] for r in rows),
        "anon_ratio_median": med([r["anon_ratio"] for r in rows]),
        "over_aim": [r["bundle"] for r in rows if r["ratio"] > AIM_RATIO],
        "over_aim_arena1": [r["bundle"] for r in rows if r["ratio_arena1"] > AIM_RATIO],
        "within_aim_over_50kb": [r["bundle"] for r in rows
                                 if r["safetensors_bytes"] >= 50_000 and r["ratio"] <= AIM_RATIO],
        "over_50kb": [r["bundle"] for r in rows if r["safetensors_bytes"] >= 50_000],
        "largest_over_aim_bytes": max((r["safetensors_bytes"] for r in rows if r["ratio"] > AIM_RATIO), default=0),
        "fit_fixed_bytes": fit_a, "fit_per_model_bytes": fit_m, "fit_per_safetensors_byte": fit_b,
        "fit_bundles": len(kept), "fit_left_out": [r["bundle"] for r in rows if r not in kept],
        "fit_break_even_bytes": (fit_a + fit_m) / (AIM_RATIO - fit_b) if fit_b < AIM_RATIO else None,
        "gauge_fit_fixed_bytes": gfit_a, "gauge_fit_per_safetensors_byte": gfit_b,
        "first_delta_median": med([r["first_delta"] for r in rows]),
        "first_file_delta_median": med([r["first_file_delta"] for r in rows]),
        "first_anon_delta_median": med([r["first_anon_delta"] for r in rows]),
        "noise_rss_range": max(noise[s]["VmRSS"]["max"] - noise[s]["VmRSS"]["min"] for s in SETTINGS),
        "noise_anon_range": max(noise[s]["RssAnon"]["max"] - noise[s]["RssAnon"]["min"] for s in SETTINGS),
        "amplified_ratio_worst": max((a["ratio"] for a in amplified), default=None),
        "amplified_ratio_worst_arena1": max((a["ratio_arena1"] for a in amplified), default=None),
        "gauge_over_safetensors_median": med([r["gauge_bytes"] / r["safetensors_bytes"] for r in rows]),
        "elapsed_s": elapsed,
    }
    summary["noise_per_bundle_bytes"] = summary["noise_rss_range"] / (N - 1)
    meta = {
        "date": datetime.now(UTC).strftime("%Y-%m-%dT%H:%M:%SZ"), "host_cores": os.cpu_count(),
        "machine": platform.machine(),
        "binary": str(BIN.relative_to(REPO)) if BIN.is_relative_to(REPO) else str(BIN),
        "binary_mtime": datetime.fromtimestamp(BIN.stat().st_mtime, UTC).strftime("%Y-%m-%dT%H:%M:%SZ"),
        "hey": {"c1_n": args.n, "c4_n": 2 * args.n, "warmup_n": min(200, args.n)},
        "loadavg_before": load_before, "loadavg_after": os.getloadavg(),
        "memory_reps": args.reps, "copies": N, "big_copies": args.big_copies, "big_reps": big_reps,
        "latency_service_rss_before": lat["service_rss_before"],
        "latency_service_rss_after": lat["service_rss_after"],
    }

    out = Path(args.out)
    out.mkdir(parents=True, exist_ok=True)
    raw_json = {s: {("baseline" if k == "baseline" else f"{k[0]} x{k[1]}"): v for k, v in raw[s].items()}
                for s in SETTINGS}
    (out / "per_bundle.json").write_text(json.dumps(
        {"meta": meta, "summary": summary, "rows": rows, "amplified": amplified, "noise": noise,
         "latency_raw": lat["bundles"], "memory_raw": raw_json}, indent=1) + "\n")
    (out / "per_bundle.md").write_text(render_md(meta, summary, rows, amplified, noise))

    s = summary
    print()
    print(f"{s['bundles']} bundles, every response 200: {s['all_200']}  ({elapsed:.0f} s)")
    print(f"/predict p50 (c=1): median {s['p50_ms_median']:.3f} ms, range {s['p50_ms_min']:.3f} "
          f"({s['p50_ms_min_bundle']}) - {s['p50_ms_max']:.3f} ms ({s['p50_ms_max_bundle']}); "
          f"median {s['req_s_median']:.0f} req/s; server-side mean {s['server_mean_us_median']:.1f} us")
    print(f"memory per loaded bundle ((RSS of {N} copies - RSS of 1) / {N - 1}) / safetensors bytes: "
          f"median {s['ratio_median']:.2f}, best {s['ratio_best']:.2f}, worst {s['ratio_worst']:.2f} "
          f"({s['ratio_worst_bundle']}); MALLOC_ARENA_MAX=1 median {s['ratio_median_arena1']:.2f}, "
          f"worst {s['ratio_worst_arena1']:.2f}")
    print(f"  fit: per-bundle bytes = {fmt_int(fit_a)} + {fmt_int(fit_m)} per model + {fit_b:.2f} x safetensors bytes"
          f" (break-even for 1.5x, one model: {fmt_int(s['fit_break_even_bytes'])} B); "
          f"noise ~{fmt_int(s['noise_per_bundle_bytes'])} B per bundle")
    print(f"  over {AIM_RATIO}x: {len(s['over_aim'])} of {len(rows)}: {', '.join(s['over_aim']) or 'none'}")
    print(f"  first bundle vs empty dir: median {fmt_int(s['first_delta_median'])} B "
          f"(RssFile {fmt_int(s['first_file_delta_median'])}, RssAnon {fmt_int(s['first_anon_delta_median'])})")
    for a in amplified:
        print(f"  {a['bundle']} x{a['copies']}: {fmt_int(a['rss_delta'])} B per copy = {a['ratio']:.2f}x its "
              f"{fmt_int(a['safetensors_bytes'])} B (MALLOC_ARENA_MAX=1 {a['ratio_arena1']:.2f}x)")
    print(f"report: {(out / 'per_bundle.md').relative_to(REPO) if out.is_relative_to(REPO) else out}")


def render_md(meta, s, rows, amplified, noise) -> str:
    N = meta["copies"]
    L = []
    L.append(f"# Per bundle: /predict latency and memory ({meta['date']})")
    L.append("")
    L.append(f"`bench/per_bundle.py` (`make bench-bundles`) on {meta['host_cores']} cores shared by hey and the "
             f"service ({meta['binary']}, built {meta['binary_mtime']}). Took {s['elapsed_s']:.0f} s; load average "
             f"{meta['loadavg_before'][0]:.1f} before, {meta['loadavg_after'][0]:.1f} after (the machine is shared).")
    L.append("")
    L.append("## Summary")
    L.append("")
    L.append(f"- {s['bundles']} bundles, every one of the {s['bundles'] * 3 * meta['hey']['c1_n']} measured "
             f"responses 200: **{'yes' if s['all_200'] else 'NO'}**.")
    L.append(f"- /predict p50 at 1 connection, end to end through hey: median **{s['p50_ms_median']:.3f} ms**, "
             f"range {s['p50_ms_min']:.3f} ms ({s['p50_ms_min_bundle']}) - {s['p50_ms_max']:.3f} ms "
             f"({s['p50_ms_max_bundle']}); p99 median {s['p99_ms_median']:.3f} ms; median {s['req_s_median']:.0f} "
             f"req/s at 1 connection, {s['c4_req_s_median']:.0f} at 4. The service's own pipeline time (parse .. "
             f"serialise) median {s['server_mean_us_median']:.1f} us: most of the end-to-end time is HTTP and hey.")
    L.append(f"- Memory per loaded bundle (RSS of {N} copies - RSS of 1 copy, / {N - 1}) over its safetensors "
             f"bytes: median **{s['ratio_median']:.2f}x**, best {s['ratio_best']:.2f}x, worst "
             f"**{s['ratio_worst']:.2f}x** ({s['ratio_worst_bundle']}); MALLOC_ARENA_MAX=1: median "
             f"{s['ratio_median_arena1']:.2f}x, worst {s['ratio_worst_arena1']:.2f}x. "
             f"Over the {AIM_RATIO}x aim: {len(s['over_aim'])} of {s['bundles']}. "
             f"Bundles of 50 KB and more within it: {len(s['within_aim_over_50kb'])} of {len(s['over_50kb'])}; "
             f"the largest bundle over it has {fmt_int(s['largest_over_aim_bytes'])} B of safetensors.")
    L.append(f"- Where it goes (least squares over {s['fit_bundles']} bundles): per-bundle RSS = "
             f"{fmt_int(s['fit_fixed_bytes'])} B + {fmt_int(s['fit_per_model_bytes'])} B per model in the bundle + "
             f"{s['fit_per_safetensors_byte']:.2f} x safetensors bytes (the weights gauge: "
             f"{fmt_int(s['gauge_fit_fixed_bytes'])} B + {s['gauge_fit_per_safetensors_byte']:.2f} x). The fixed "
             f"part (per model: the parsed hyper-parameters kept as a JSON value in the model spec, names, the "
             f"model struct; per bundle: its struct, hash, cache and metrics entries; allocator rounding) "
             f"dominates small bundles: a one-model bundle meets {AIM_RATIO}x from about "
             f"{fmt_int(s['fit_break_even_bytes'])} B of safetensors. Left out of the fit: "
             f"{', '.join(s['fit_left_out']) or 'none'} (they hold far less than their file: TimeMixer's file "
             f"carries an 80 KB positional table its forward pass never reads, and the service does not keep it).")
    if amplified:
        L.append(f"- The {len(amplified)} biggest bundles as {amplified[0]['copies']} copies: worst "
                 f"{s['amplified_ratio_worst']:.2f}x (MALLOC_ARENA_MAX=1 {s['amplified_ratio_worst_arena1']:.2f}x).")
    L.append(f"- ONE bundle vs an empty model dir is dominated by a one-time cost: "
             f"median {fmt_int(s['first_delta_median'])} B, of which RssFile (code pages of the binary's loader "
             f"and model code faulted in the first time) {fmt_int(s['first_file_delta_median'])} B and RssAnon "
             f"{fmt_int(s['first_anon_delta_median'])} B. It is in the JSON (`first_delta`) but no per-bundle "
             f"ratio can be read from it.")
    L.append(f"- Noise: the empty-dir baseline's VmRSS spans {fmt_int(s['noise_rss_range'])} B between starts "
             f"(RssAnon {fmt_int(s['noise_anon_range'])} B; RssFile, i.e. fault-around on the binary, is the "
             f"noisy part); spread over {N - 1} extra copies that is ~{fmt_int(s['noise_per_bundle_bytes'])} B "
             f"per bundle, before taking medians of {meta['memory_reps']} starts.")
    L.append(f"- `neuro_divergent_model_memory_bytes` (f32 weights read) / safetensors bytes: median "
             f"{s['gauge_over_safetensors_median']:.2f} (the file also holds its JSON header with the "
             f"hyper-parameters, and `configuration.safetensors` when there is a local scaler).")
    L.append("")
    L.append("- hey's resolution is 0.1 ms: the p50 of the cheap bundles sits inside hey's first bin "
             "(0.05-0.15 ms) and reads ~0.10 ms for all of them; differences between models show in \"server us\" "
             "and in req/s. p99 on a shared 2-core machine is mostly scheduling (hey, the service and other "
             "work on the same cores).")
    L.append("")
    L.append("## Method")
    L.append("")
    L.append(f"- Latency: ONE service on all of `tests/fixtures/bundles`; per bundle its first golden case "
             f"(by file name) as the body, `?model=<bundle>`; one request checked by hand, then hey -o csv: warm-up "
             f"{meta['hey']['warmup_n']}, `-n {meta['hey']['c1_n']} -c 1`, `-n {meta['hey']['c4_n']} -c 4`. "
             f"hey prints times in 0.1 ms steps; p50/p99 are interpolated inside those bins (hey's raw values "
             f"are in the JSON). req/s = requests / wall time of the run. \"server us\" = mean of "
             f"`neuro_divergent_prediction_duration_seconds` for the bundle over the -c 1 run.")
    L.append(f"- Memory: fresh services (EAGER_LOAD=true, RELOAD_INTERVAL_MS=0, LOG_LEVEL=warn) on a temp dir "
             f"holding 1 copy, or {N} copies, of one bundle; `/ready`, `/metrics` (gauge checked: every copy "
             f"loaded), then VmRSS/RssAnon/RssFile from /proc/PID/status. Medians of {meta['memory_reps']} "
             f"starts, repetitions interleaved, with the default glibc malloc and with MALLOC_ARENA_MAX=1 (the "
             f"initial load runs on a tokio blocking thread, in a glibc thread arena). Baseline: the same command "
             f"on an empty dir (waits for `/health`: with eager load and no bundle `/ready` stays 503). "
             f"Safetensors bytes = every `*.safetensors` in the bundle dir.")
    L.append("")
    L.append("| setting | baseline | median | min | max | MAD |")
    L.append("|---|---|---|---|---|---|")
    for k, v in noise.items():
        for key in KEYS:
            x = v[key]
            L.append(f"| {'glibc default' if k == 'default' else 'MALLOC_ARENA_MAX=1'} | {key} | "
                     f"{fmt_int(x['median'])} | {fmt_int(x['min'])} | {fmt_int(x['max'])} | {fmt_int(x['mad'])} |")
    L.append("")
    if amplified:
        L.append("## Biggest bundles, more copies")
        L.append("")
        L.append("| bundle | copies | safetensors B | weights gauge B | RSS per copy B | ratio | RssAnon per copy B "
                 "| ratio | MALLOC_ARENA_MAX=1: RSS per copy B | ratio |")
        L.append("|---|---|---|---|---|---|---|---|---|---|")
        for a in amplified:
            L.append(f"| {a['bundle']} | {a['copies']} | {fmt_int(a['safetensors_bytes'])} | "
                     f"{fmt_int(a['gauge_bytes'])} | {fmt_int(a['rss_delta'])} | {a['ratio']:.2f} | "
                     f"{fmt_int(a['anon_delta'])} | {a['anon_ratio']:.2f} | {fmt_int(a['rss_delta_arena1'])} | "
                     f"{a['ratio_arena1']:.2f} |")
        L.append("")
    L.append("## Per bundle")
    L.append("")
    L.append(f"Latency at 1 connection unless marked c4. \"RSS delta\" = memory per loaded bundle, "
             f"(VmRSS with {N} copies - VmRSS with 1) / {N - 1}; \"ratio\" = RSS delta / safetensors bytes.")
    L.append("")
    L.append("| model class | bundle | p50 ms | p99 ms | req/s | c4 p50 ms | c4 req/s | server us | "
             "safetensors B | weights gauge B | RSS delta B | ratio | RssAnon ratio | ratio, ARENA_MAX=1 |")
    L.append("|---|---|---|---|---|---|---|---|---|---|---|---|---|---|")
    for r in sorted(rows, key=lambda r: (r["model_class"].lower(), r["bundle"])):
        L.append(f"| {r['model_class']} | {r['bundle']} | {r['p50_ms']:.3f} | {r['p99_ms']:.3f} | {r['req_s']:.0f} | "
                 f"{r['c4_p50_ms']:.3f} | {r['c4_req_s']:.0f} | {r['server_mean_us']:.1f} | "
                 f"{fmt_int(r['safetensors_bytes'])} | {fmt_int(r['gauge_bytes'])} | {fmt_int(r['rss_delta'])} | "
                 f"{r['ratio']:.2f} | {r['anon_ratio']:.2f} | {r['ratio_arena1']:.2f} |")
    L.append("")
    return "\n".join(L)


if __name__ == "__main__":
    main()
