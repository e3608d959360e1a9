"""The migration walkthrough (`make migrate`): the progressive migration's phases on the
running mesh, under continuous hey load, the filter reconfigured live (ECDS).

    python -m loadtest.migrate [--hold 20] [--steps 100,1000,2500,5000,10000]
                               [--inject wrong-numbers] [--state FILE | --own]

1. Mirroring on (shadow.share_bp, python_to_rust: every answer Python gives is
   also asked of Rust and compared), Rust weight 0; hold.
2. Before each step the gates are evaluated against the mesh's Prometheus over
   the last hold (gates.py: the chart's MetricTemplate queries -- success rate,
   p99 latency, shadow mismatch ratio -- and its alert rules' conditions).
   All pass: next weight (1% -> 10% -> 25% -> 50% -> 100%), hold.
   One fails: the weight goes back to 0 at once, the reason is printed, and
   the walkthrough ends with exit status 1.
3. At 100% a last check (success rate, p99, alerts; no shadow comparisons are
   left to judge then, Python gets no primaries).
4. hey is stopped; every answer it got must have been a 200 (the live
   reconfigurations drop nothing). A report goes to loadtest/results/.

--inject wrong-numbers: right after the first step (Rust at 1%), the Rust
service's bundle copy is replaced with one whose numbers are wrong (valid, it
hot-reloads); the shadow mismatch gate must then fail and roll back.

Without a running mesh (`make run`, state file in /tmp), or with --own, the
walkthrough starts its own mesh on ephemeral ports and stops it afterwards.
Exit status: 0 promoted to 100%, 1 rolled back, 2 could not run.
"""

from __future__ import annotations

import argparse
import json
import shlex
import sys
import time
from dataclasses import asdict
from pathlib import Path

import httpx
import yaml

from . import faults, gates, hey
from .mesh import STATE_FILE, Mesh

RESULTS = Path(__file__).resolve().parent / "results"
STEPS = [100, 1000, 2500, 5000, 10000]


def chart_load() -> tuple[int, float]:
    """-c and -q of the chart's Flagger load test (values.yaml canary.loadTest.heyArgs)."""
    args = shlex.split(yaml.safe_load(gates.VALUES.read_text())["canary"]["loadTest"]["heyArgs"])
    c = int(args[args.index("-c") + 1]) if "-c" in args else 2
    q = float(args[args.index("-q") + 1]) if "-q" in args else 10
    return c, q


def bundle_hash(mesh: Mesh) -> str | None:
    r = httpx.get(mesh.url("rust") + "/models", timeout=5)
    for b in r.json().get("models", []):
        if b["name"] == mesh.call.model:
            return b["content_hash"]
    return None


def wait_reload(mesh: Mesh, before: str | None, timeout=15) -> str:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        h = bundle_hash(mesh)
        if h and h != before:
            return h
        time.sleep(0.2)
    raise RuntimeError(f"the Rust service did not reload {mesh.call.model} within {timeout}s")


def pct(bp):
    return f"{bp / 100:g}%"


class Walkthrough:
    def __init__(self, mesh: Mesh, hold: float, steps, shadow_bp: int, inject: str | None, c: int, q: float,
                 log=print):
        self.mesh, self.hold, self.steps = mesh, hold, steps
        self.shadow_bp, self.inject, self.c, self.q = shadow_bp, inject, c, q
        self.log = log
        self.report = {"hold_s": hold, "steps_bp": steps, "shadow_bp": shadow_bp, "inject": inject,
                       "load": {"c": c, "q_per_worker": q}, "phases": [], "outcome": None}
        self.backup: faults.Backup | None = None

    def interval(self):
        return f"{max(int(round(self.hold)), 3)}s"

    def gate(self, weight, final=False) -> bool:
        # Let the last samples of the window reach Prometheus (scrape 1 s, Envoy flush 1 s).
        time.sleep(2.0)
        results = gates.evaluate(gates.PromClient(self.mesh.prometheus_url), self.interval())
        if final:
            # At 100% Python answers no primaries: nothing is mirrored to Rust.
            results = [g for g in results if g.name != "shadow mismatch ratio" or g.value is not None]
        self.log(f"  gates at {pct(weight)} over the last {self.interval()}:")
        for g in results:
            self.log("    " + g.line())
        self.report["phases"][-1]["gates"] = [asdict(g) for g in results]
        return all(g.ok for g in results)

    def set_weight(self, bp):
        t = time.monotonic()
        self.mesh.set_weight(bp)
        self.report["phases"].append({"weight_bp": bp, "at": time.time(),
                                      "reconfig_ms": round(1000 * (time.monotonic() - t))})

    def run(self) -> int:
        m = self.mesh
        url = m.call.url(m.client_url)
        self.log(f"migrate: mirroring {pct(self.shadow_bp)} python->rust, Rust weight 0; load "
                 f"hey -c {self.c} -q {self.q:g} on {url}; hold {self.hold:g}s per phase")
        m.set_config(rust_weight_bp=0, shadow={"share_bp": self.shadow_bp, "direction": "python_to_rust"})
        self.report["phases"].append({"weight_bp": 0, "at": time.time(), "reconfig_ms": 0})
        load = hey.Background(hey.command(url, duration="3600s", c=self.c, q=self.q, body=m.call.body,
                                          headers=m.call.header_lines()),
                              m.workdir / f"migrate-hey-{int(time.time())}.txt")
        rc = 2
        current = 0
        try:
            time.sleep(self.hold)
            for i, bp in enumerate(self.steps):
                if not self.gate(current):
                    failed = [g for g in self.report["phases"][-1]["gates"] if not g["ok"]]
                    self.rollback(current, failed)
                    rc = 1
                    break
                self.log(f"migrate: step {pct(current)} -> {pct(bp)}")
                self.set_weight(bp)
                current = bp
                if i == 0 and self.inject == "wrong-numbers":
                    self.inject_wrong_numbers()
                time.sleep(self.hold)
            else:
                ok = self.gate(current, final=True)
                if ok:
                    self.log("migrate: PROMOTED: Rust serves 100% of /predict")
                    self.report["outcome"] = "promoted"
                    rc = 0
                else:
                    failed = [g for g in self.report["phases"][-1]["gates"] if not g["ok"]]
                    self.rollback(current, failed)
                    rc = 1
        finally:
            summary = load.stop()
            if self.backup is not None:
                self.backup.restore()
                self.log("migrate: the injected bundle is restored")
        summary.pop("raw", None)
        self.report["load_result"] = summary
        self.report["final_weight_bp"] = self.mesh.plugin_config["rust_weight_bp"]
        self.log(f"migrate: load: {summary['requests']} requests, {summary['ok']} answered 200, "
                 f"{summary['failed']} failed ({summary['status']}"
                 f"{', ' + str(summary['errors']) if summary['errors'] else ''}); "
                 f"p99 {summary['latency_ms'].get('p99', float('nan')):.1f} ms")
        if summary["failed"]:
            self.log("migrate: FAILED requests during the walkthrough")
            rc = max(rc, 1)
        return rc

    def rollback(self, weight, failed):
        t = time.monotonic()
        self.mesh.set_weight(0)
        why = "; ".join(f"{g['name']}: {g['why']}" for g in failed)
        self.log(f"migrate: ROLLBACK {pct(weight)} -> 0% ({1000 * (time.monotonic() - t):.0f} ms): {why}")
        self.report["outcome"] = "rolled_back"
        self.report["rolled_back_from_bp"] = weight
        self.report["rollback_reason"] = why
        self.report["phases"].append({"weight_bp": 0, "at": time.time(), "rollback": True})
        time.sleep(min(self.hold, 3))  # traffic keeps flowing on Python after the rollback

    def inject_wrong_numbers(self):
        bundle = self.mesh.rust_model_path / self.mesh.call.model
        before = bundle_hash(self.mesh)
        if before is None:
            raise RuntimeError(f"the Rust service does not serve {self.mesh.call.model}")
        self.backup = faults.wrong_numbers(bundle)
        after = wait_reload(self.mesh, before)
        self.log(f"migrate: INJECTED wrong numbers into the Rust service's {self.mesh.call.model} "
                 f"({before[:19]}... -> {after[:19]}...)")
        self.report["injected"] = {"bundle": str(bundle), "hash_before": before, "hash_after": after}


def main(argv=None) -> int:
    c0, q0 = chart_load()
    p = argparse.ArgumentParser(prog="python -m loadtest.migrate", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--hold", type=float, default=20, help="seconds per phase (also the gates' window)")
    p.add_argument("--steps", default=",".join(map(str, STEPS)), help="Rust weights in basis points")
    p.add_argument("--shadow-bp", type=int, default=10000, help="share of Python answers mirrored to Rust")
    p.add_argument("--inject", choices=["wrong-numbers"], help="a fault after the first step")
    p.add_argument("-c", type=int, default=c0, help=f"hey workers (chart's loadTest.heyArgs: {c0})")
    p.add_argument("-q", type=float, default=q0, help=f"hey rate per worker (chart: {q0:g})")
    p.add_argument("--state", help=f"the running mesh's state file (default {STATE_FILE})")
    p.add_argument("--own", action="store_true", help="start a mesh of its own (ephemeral ports)")
    p.add_argument("--report", help="JSON report path (default loadtest/results/migrate-<time>.json)")
    a = p.parse_args(argv)
    steps = [int(s) for s in a.steps.split(",") if s]
    mesh, owned = None, False
    try:
        state = Path(a.state) if a.state else STATE_FILE
        if not a.own and state.exists():
            mesh = Mesh.attach(state)
            print(f"migrate: on the running mesh ({state}): client {mesh.client_url}")
        else:
            print("migrate: no running mesh (`make run`): starting one on ephemeral ports")
            mesh, owned = Mesh(ephemeral=True).start(), True
    except RuntimeError as e:
        print(f"migrate: {e}", file=sys.stderr)
        return 2
    w = Walkthrough(mesh, a.hold, steps, a.shadow_bp, a.inject, a.c, a.q)
    try:
        rc = w.run()
    except RuntimeError as e:
        print(f"migrate: {e}", file=sys.stderr)
        rc = 2
    finally:
        if owned:
            mesh.stop()
    RESULTS.mkdir(exist_ok=True)
    path = Path(a.report) if a.report else RESULTS / f"migrate-{time.strftime('%Y%m%dT%H%M%S')}.json"
    w.report["exit_status"] = rc
    path.write_text(json.dumps(w.report, indent=1))
    print(f"migrate: report {path}")
    return rc


if __name__ == "__main__":
    sys.exit(main())
