"""Migration gates: the chart's own PromQL, filled for the local mesh and
evaluated against the mesh's real Prometheus.

One source for every query (nothing is copied here):
- the Flagger MetricTemplates' queries, `helm/neuro-divergent/files/promql/*.promql`
  (the chart embeds these files verbatim), with their thresholds from
  `values.yaml` `canary.analysis` (errorRatio, p99Seconds, shadowMismatch.max);
- the alert rules of `templates/prometheusrule.yaml`, extracted from the
  template and filled with `values.yaml` `monitoring.prometheusRule`; the mesh's
  Prometheus loads them as a rule file, and a gate fails when an alert's
  condition holds now (its `for:` is not waited for: a gate is stricter).

Template variables are filled the way Flagger / Helm fill them, for the names
the local mesh gives its Prometheus targets (mesh.scrape_configs):
namespace="local", target="neuro-divergent" (the Rust pod label is
neuro-divergent-local-rust, which the templates' canary-pod regex matches),
job="neuro-divergent" (the chart's nd.job, the release name).

    python -m loadtest.gates [--prometheus URL] [--interval 30s]   # evaluate now
    python -m loadtest.gates --print                                # the filled queries
    python -m loadtest.gates --write-rules rules.yml                # the alerts as a rule file
"""

from __future__ import annotations

import argparse
import json
import math
import re
import sys
from dataclasses import asdict, dataclass
from pathlib import Path
from typing import Any

import yaml

REPO = Path(__file__).resolve().parent.parent
CHART = REPO / "helm/neuro-divergent"
PROMQL_DIR = CHART / "files/promql"
RULE_TEMPLATE = CHART / "templates/prometheusrule.yaml"
VALUES = CHART / "values.yaml"

# How the local mesh labels its targets (see mesh.scrape_configs).
NAMESPACE = "local"
TARGET = "neuro-divergent"  # Flagger's {{ target }}: the Deployment name
JOB = "neuro-divergent"  # the chart's nd.job (release name)
CONTAINER = "neuro-divergent"  # the chart's nd.container for component rust
RUST_POD = f"{TARGET}-local-rust"  # <target>-<hash>-<hash>, like a canary pod
PYTHON_POD = "neuralforecast-python-local-python"
PYTHON_JOB = "neuralforecast-python"

# Which MetricTemplate gates the walkthrough, and how its value is judged.
# (name of files/promql/<name>.promql, label, values.yaml canary.analysis key, transform)
TEMPLATE_GATES = [
    ("error-ratio", "success rate", "errorRatio"),
    ("latency-p99", "p99 latency (s)", "p99Seconds"),
    ("shadow-mismatch-ratio", "shadow mismatch ratio", "shadowMismatch.max"),
]


def _values():
    return yaml.safe_load(VALUES.read_text())


def _dig(d, dotted):
    for k in dotted.split("."):
        d = d[k]
    return d


def metric_templates() -> dict[str, str]:
    """{name: query} of every files/promql/*.promql (Flagger MetricTemplates)."""
    out = {p.stem: p.read_text().strip() for p in sorted(PROMQL_DIR.glob("*.promql"))}
    if not out:
        raise RuntimeError(f"no PromQL in {PROMQL_DIR}")
    return out


def fill(query: str, **variables) -> str:
    """Flagger's template variables ({{ namespace }}, {{ target }}, {{ interval }}, ...)."""
    out = query
    for name, value in variables.items():
        out = re.sub(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", str(value), out)
    if "{{" in out:
        raise ValueError(f"unfilled template variable in:\n{out}")
    return out


def local_query(name: str, interval: str) -> str:
    return fill(metric_templates()[name], namespace=NAMESPACE, target=TARGET, interval=interval)


def thresholds() -> dict[str, float]:
    a = _values()["canary"]["analysis"]
    return {name: float(_dig(a, key)) for name, _, key in TEMPLATE_GATES}


# ------------------------------------------------------------------ alert rules


def alert_rules() -> list[dict]:
    """The alerts of templates/prometheusrule.yaml as Prometheus rules, each
    expr taken from the template and filled as Helm would for this mesh:
    $sel -> job/namespace, $r.* -> values.yaml monitoring.prometheusRule,
    .Release.Namespace, nd.container. Any other template action is an error,
    so a changed template is noticed rather than half-filled."""
    text = RULE_TEMPLATE.read_text()
    r = _values()["monitoring"]["prometheusRule"]
    sel = f'job="{JOB}",namespace="{NAMESPACE}"'
    lines = text.splitlines()
    rules, group = [], None
    i = 0
    while i < len(lines):
        line = lines[i]
        g = re.match(r"\s*- name: .*\.(\w+)\s*$", line)
        if g:
            group = g.group(1)
        m = re.match(r"(\s*)- alert: (\w+)\s*$", line)
        if not m:
            i += 1
            continue
        indent = len(m.group(1)) + 2
        rule: dict[str, Any] = {"alert": m.group(2), "group": group}
        i += 1
        while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) >= indent):
            cur = lines[i]
            e = re.match(r"\s*expr: (\|-?)?\s*(.*)$", cur)
            if e and len(cur) - len(cur.lstrip()) == indent:
                if e.group(1):
                    body = []
                    i += 1
                    while i < len(lines) and (not lines[i].strip() or len(lines[i]) - len(lines[i].lstrip()) > indent):
                        body.append(lines[i].strip())
                        i += 1
                    rule["expr"] = " ".join(b for b in body if b)
                else:
                    rule["expr"] = e.group(2).strip()
                    i += 1
                continue
            f = re.match(r"\s*for: (\S+)", cur)
            if f and len(cur) - len(cur.lstrip()) == indent:
                rule["for"] = f.group(1)
            s = re.match(r"\s*severity: (\S+)", cur)
            if s:
                rule["severity"] = s.group(1)
            sm = re.match(r"\s*summary: (.+)$", cur)
            if sm:
                rule["summary"] = sm.group(1).strip()
            i += 1
        expr = rule["expr"]
        expr = re.sub(r"\s*\{\{-\s*\$sel\s*\}\}", sel, expr)
        expr = re.sub(r"\{\{\s*\$r\.(\w+)\s*\}\}", lambda mm: str(r[mm.group(1)]), expr)
        expr = re.sub(r"\{\{\s*\.Release\.Namespace\s*\}\}", NAMESPACE, expr)
        expr = re.sub(r'\{\{\s*include "nd\.container" \.\s*\}\}', CONTAINER, expr)
        if "{{" in expr:
            raise ValueError(f"{RULE_TEMPLATE}: alert {rule['alert']}: unfilled template action in {expr}")
        rule["expr"] = expr
        rules.append(rule)
    if not rules:
        raise RuntimeError(f"no alert found in {RULE_TEMPLATE}")
    return rules


def write_rules_file(path: Path) -> Path:
    """A Prometheus rule file with the chart's alerts (loaded by the mesh's Prometheus)."""
    groups: dict[str, list[dict]] = {}
    for r in alert_rules():
        rule = {"alert": r["alert"], "expr": r["expr"]}
        if "for" in r:
            rule["for"] = r["for"]
        rule["labels"] = {"severity": r.get("severity", "warning")}
        if "summary" in r:
            rule["annotations"] = {"summary": r["summary"]}
        groups.setdefault(r["group"], []).append(rule)
    doc = {"groups": [{"name": f"neuro-divergent.{g}", "rules": rs} for g, rs in groups.items()]}
    path = Path(path)
    path.write_text(yaml.safe_dump(doc, sort_keys=False, width=1000))
    return path


# ------------------------------------------------------------------ evaluation


@dataclass
class Gate:
    name: str
    query: str
    value: float | None
    limit: str
    ok: bool
    why: str

    def line(self) -> str:
        if self.name.startswith("alert "):
            v = "false" if self.ok else f"true ({self.value:.4g})"
        else:
            v = "no data" if self.value is None else f"{self.value:.6g}"
        verdict = "PASS" if self.ok else "FAIL"
        return f"{verdict}  {self.name:<28} {v:>12}  (limit {self.limit}){'' if self.ok else '  <- ' + self.why}"


class PromClient:
    """Instant queries against a Prometheus HTTP API."""

    def __init__(self, url: str):
        self.url = url.rstrip("/")

    def query(self, expr: str) -> list:
        import httpx

        r = httpx.get(self.url + "/api/v1/query", params={"query": expr}, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            raise RuntimeError(f"PromQL refused: {body.get('error')}\n{expr}")
        return body["data"]["result"]

    def scalar(self, expr: str) -> float | None:
        """The one float a MetricTemplate must return; None when there is no value
        (Flagger counts that as a failed check) or it is NaN (0/0: no traffic)."""
        res = self.query(expr)
        if not res:
            return None
        if len(res) != 1:
            raise RuntimeError(f"expected one series, got {len(res)}: {res}\n{expr}")
        v = float(res[0]["value"][1])
        return None if math.isnan(v) else v


def evaluate(prom, interval: str, alerts: bool = True) -> list[Gate]:
    """Every gate now: the three MetricTemplates over `interval`, then the alert conditions."""
    limits = thresholds()
    gates = []
    for name, label, _ in TEMPLATE_GATES:
        q = local_query(name, interval)
        v = prom.scalar(q)
        limit = limits[name]
        if name == "error-ratio":
            shown = None if v is None else 1 - v
            ok = shown is not None and shown >= 1 - limit
            gates.append(Gate(label, q, shown, f">= {1 - limit:g}", ok,
                              "no data (no Rust /predict answers in the window)" if shown is None
                              else f"{100 * v:.3g}% of Rust /predict answers were 5xx"))
        else:
            ok = v is not None and v <= limit
            why = ("no data in the window" if v is None
                   else f"{v:.4g} > {limit:g}")
            if name == "shadow-mismatch-ratio" and v is not None and not ok:
                why = f"{100 * v:.3g}% of shadow-compared answers differ (limit {100 * limit:g}%)"
            gates.append(Gate(label, q, v, f"<= {limit:g}", ok, why))
    if alerts:
        for rule in alert_rules():
            res = prom.query(rule["expr"])
            firing = bool(res)
            val = float(res[0]["value"][1]) if res else None
            gates.append(Gate(f"alert {rule['alert']}", rule["expr"], val, "condition false", not firing,
                              f"alert condition holds: {rule.get('summary', rule['alert'])}"))
    return gates


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.gates", description=__doc__,
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    p.add_argument("--prometheus", default="http://127.0.0.1:9090")
    p.add_argument("--interval", default="30s")
    p.add_argument("--print", action="store_true", help="print the filled queries and rules, evaluate nothing")
    p.add_argument("--json", action="store_true")
    p.add_argument("--write-rules", metavar="FILE", help="write the chart's alerts as a Prometheus rule file")
    a = p.parse_args(argv)
    if a.write_rules:
        print(f"wrote {write_rules_file(Path(a.write_rules))}")
        return 0
    if a.print:
        for name, _, _ in TEMPLATE_GATES:
            print(f"# {name} (files/promql/{name}.promql), limit {thresholds()[name]}")
            print(local_query(name, a.interval), end="\n\n")
        for r in alert_rules():
            print(f"# alert {r['alert']} (templates/prometheusrule.yaml)\n{r['expr']}\n")
        return 0
    gates = evaluate(PromClient(a.prometheus), a.interval)
    if a.json:
        print(json.dumps([asdict(g) for g in gates], indent=1))
    else:
        for g in gates:
            print(g.line())
    return 0 if all(g.ok for g in gates) else 1


if __name__ == "__main__":
    sys.exit(main())
