"""The chart's PrometheusRule through promtool: syntax (check rules) and
behaviour (test rules: a firing and a non-firing case per alert)."""

import shutil
import subprocess

import yaml
from k8s_support import HERE, docs, find


def write_rules(render, directory):
    rule = find(docs(render("default")), "PrometheusRule")
    (directory / "rules.yaml").write_text(yaml.safe_dump({"groups": rule["spec"]["groups"]}, sort_keys=False))
    return rule


def test_promtool_check_rules(render, tools, tmp_path):
    write_rules(render, tmp_path)
    r = subprocess.run([tools["PROMTOOL"], "check", "rules", str(tmp_path / "rules.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    assert "SUCCESS: 5 rules found" in r.stdout


def test_promtool_test_rules(render, tools, tmp_path):
    rule = write_rules(render, tmp_path)
    shutil.copy(HERE / "rules_test.yaml", tmp_path / "rules_test.yaml")
    r = subprocess.run([tools["PROMTOOL"], "test", "rules", str(tmp_path / "rules_test.yaml")],
                       capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr
    # Every alert of the chart has a firing and a non-firing case in rules_test.yaml.
    tests = yaml.safe_load((HERE / "rules_test.yaml").read_text())["tests"]
    cases = {}
    for t in tests:
        for a in t["alert_rule_test"]:
            cases.setdefault(a["alertname"], set()).add(bool(a["exp_alerts"]))
    alerts = {r["alert"] for g in rule["spec"]["groups"] for r in g["rules"]}
    assert {"HighErrorRate", "HighLatency", "PodCrashLooping", "ShadowDivergence"} <= alerts
    for alert in alerts:
        assert cases.get(alert) == {True, False}, f"{alert} needs a firing and a non-firing case"
