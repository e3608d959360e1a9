"""Every shipped Envoy configuration passes `envoy --mode validate`; with a
Wasm filter inline, validation runs the filter's on_configure, so an invalid
plugin configuration fails it."""

import json
import re
import subprocess

import harness
import pytest
import yaml

BOOTSTRAPS = sorted(p for p in harness.SHIPPED.glob("*.yaml") if "static_resources" in p.read_text())
ECDS_RESOURCES = sorted(p for p in harness.SHIPPED.glob("*.yaml") if "TypedExtensionConfig" in p.read_text())


def validate(path):
    r = subprocess.run([harness.envoy_bin(), "--mode", "validate", "-c", str(path),
                        "--base-id", str(harness.next_base_id())],
                       cwd=harness.REPO, capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def test_there_are_shipped_configs():
    names = {p.name for p in BOOTSTRAPS}
    assert {"envoy.yaml", "envoy-ecds.yaml"} <= names
    assert [p.name for p in ECDS_RESOURCES] == ["nd_filter.ecds.yaml"]


@pytest.mark.parametrize("path", BOOTSTRAPS, ids=lambda p: p.name)
def test_shipped_bootstrap_validates(path, wasm):
    rc, out = validate(path)
    assert rc == 0, out[-3000:]


@pytest.mark.parametrize("path", ECDS_RESOURCES, ids=lambda p: p.name)
def test_shipped_ecds_resource_validates(path, wasm, tmp_path):
    """ECDS resources are not loaded by --mode validate: embed the filter in a
    static bootstrap, so Envoy compiles the module and runs on_configure."""
    doc = yaml.safe_load(path.read_text())
    wasm_config = doc["resources"][0]["typed_config"]["config"]
    boot = yaml.safe_load((harness.SHIPPED / "envoy.yaml").read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    hcm["http_filters"][0]["typed_config"]["config"] = wasm_config
    cfg = tmp_path / "embedded.json"
    cfg.write_text(json.dumps(boot))
    rc, out = validate(cfg)
    assert rc == 0, out[-3000:]
    assert "nd-filter: configured" in out


def test_invalid_plugin_configuration_fails_validation(wasm, tmp_path):
    boot = yaml.safe_load((harness.SHIPPED / "envoy.yaml").read_text())
    hcm = boot["static_resources"]["listeners"][0]["filter_chains"][0]["filters"][0]["typed_config"]
    conf = hcm["http_filters"][0]["typed_config"]["config"]["configuration"]
    plugin = json.loads(conf["value"])
    plugin["breaker"]["both_open"] = "shrug"
    conf["value"] = json.dumps(plugin)
    cfg = tmp_path / "bad.json"
    cfg.write_text(json.dumps(boot))
    rc, out = validate(cfg)
    assert rc == 1
    assert 'nd-filter: refusing plugin configuration: breaker.both_open: "shrug" is not one of' in out


def test_readme_stats_tags_match_the_shipped_config():
    readme = (harness.REPO / "wasm-filter/README.md").read_text()
    documented = re.findall(r"- tag_name: (\w+)\n\s+regex: '([^']+)'", readme)
    shipped = [(t["tag_name"], t["regex"]) for t in harness.stats_tags()]
    assert documented == shipped
