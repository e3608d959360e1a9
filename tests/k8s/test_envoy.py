"""The Envoy configuration inside the WasmPlugin and EnvoyFilter manifests,
embedded in a minimal bootstrap and checked by `envoy --mode validate`
(Envoy 1.40 from the project venv) with the real filter module, whose
on_configure runs during validation and refuses a bad plugin configuration.

A module of the bare bytes "\\0asm\\1\\0\\0\\0" is not enough: Envoy refuses
to create a plugin from a module without the proxy-wasm ABI, so the test
builds the real filter if target/ lacks it.
"""

import copy
import json
import subprocess

import pytest
import yaml
from k8s_support import docs

WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"
STRING_VALUE = "type.googleapis.com/google.protobuf.StringValue"


def cluster(name, port):
    return {"name": name, "type": "STATIC", "connect_timeout": "1s",
            "load_assignment": {"cluster_name": name, "endpoints": [{"lb_endpoints": [
                {"endpoint": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": port}}}}]}]}}


def bootstrap(http_filters_per_listener, plugin_config):
    """Listeners on unused ports (validate binds nothing), routes as the split VirtualService
    has them, and clusters under the names Istio gives the Services (the filter's shadow targets)."""
    rust = plugin_config["backends"]["rust"]["cluster"]
    python = plugin_config["backends"]["python"]["cluster"]
    header = plugin_config.get("routing_header", "x-nd-backend")
    routes = [
        {"match": {"prefix": "/predict", "headers": [{"name": header, "string_match": {"exact": "rust"}}]},
         "route": {"cluster": rust, "timeout": "30s"}},
        {"match": {"prefix": "/"}, "route": {"cluster": python, "timeout": "30s"}},
    ]
    listeners = []
    for i, filters in enumerate(http_filters_per_listener):
        listeners.append({
            "name": f"l{i}",
            "address": {"socket_address": {"address": "127.0.0.1", "port_value": 10000 + i}},
            "filter_chains": [{"filters": [{
                "name": "envoy.filters.network.http_connection_manager",
                "typed_config": {
                    "@type": ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                              "HttpConnectionManager"),
                    "stat_prefix": f"l{i}",
                    "route_config": {"name": "r", "virtual_hosts": [{"name": "v", "domains": ["*"], "routes": routes}]},
                    "http_filters": [*filters, {"name": "envoy.filters.http.router", "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"}}],
                }}]}],
        })
    return {"node": {"id": "validate", "cluster": "validate"},
            "static_resources": {"listeners": listeners, "clusters": [cluster(rust, 8080), cluster(python, 8000)]}}


def envoy_validate(tools, config, tmp_path, name="bootstrap.yaml"):
    path = tmp_path / name
    path.write_text(yaml.safe_dump(config, sort_keys=False))
    r = subprocess.run([tools["ENVOY"], "--mode", "validate", "-c", str(path), "--base-id", "61", "-l", "warning"],
                       capture_output=True, text=True, timeout=120)
    return r.returncode, r.stdout + r.stderr


def wasmplugin_as_envoy(wp, wasm, fail_open):
    """The HTTP filter Istio builds from a WasmPlugin: Wasm config with root_id = pluginName and
    configuration = the pluginConfig as a JSON string; the module fetched (oci/file/https) to a local file."""
    spec = wp["spec"]
    return {"name": f"{wp['metadata']['namespace']}.{wp['metadata']['name']}", "typed_config": {
        "@type": WASM_TYPE,
        "config": {
            "name": f"{wp['metadata']['namespace']}.{wp['metadata']['name']}",
            "root_id": spec.get("pluginName", ""),
            "fail_open": fail_open,
            "vm_config": {"runtime": "envoy.wasm.runtime.v8", "code": {"local": {"filename": str(wasm)}}},
            "configuration": {"@type": STRING_VALUE, "value": json.dumps(spec["pluginConfig"])},
        }}}


@pytest.mark.parametrize("profile", ["migration-wasmplugin", "migration-wasmplugin-file", "canary"])
def test_wasmplugin_config_passes_envoy_validate(render, tools, filter_wasm, tmp_path, profile):
    plugins = [d for d in docs(render(profile)) if d["kind"] == "WasmPlugin"]
    assert plugins
    for wp in plugins:
        # As written (failStrategy) and with fail_open forced off, so a refused
        # plugin configuration cannot hide behind FAIL_OPEN.
        for fail_open in {wp["spec"]["failStrategy"] == "FAIL_OPEN", False}:
            cfg = bootstrap([[wasmplugin_as_envoy(wp, filter_wasm, fail_open)]], wp["spec"]["pluginConfig"])
            rc, out = envoy_validate(tools, cfg, tmp_path)
            assert rc == 0 and "OK" in out, out[-3000:]


def envoyfilter_parts(ef):
    ext = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "EXTENSION_CONFIG"]
    http = [p for p in ef["spec"]["configPatches"] if p["applyTo"] == "HTTP_FILTER"]
    assert len(ext) == 1 and len(http) == 1
    return ext[0]["patch"]["value"], http[0]["patch"]["value"]


def test_envoyfilter_patches_pass_envoy_validate(render, tools, filter_wasm, tmp_path):
    filters = [d for d in docs(render("migration-envoyfilter")) if d["kind"] == "EnvoyFilter"]
    assert len(filters) == 2
    for ef in filters:
        ext, http = envoyfilter_parts(ef)
        typed = copy.deepcopy(ext["typed_config"])
        assert typed["@type"] == WASM_TYPE
        typed["config"]["vm_config"]["code"]["local"]["filename"] = str(filter_wasm)  # the module "mounted"
        plugin_config = json.loads(typed["config"]["configuration"]["value"])
        strict = copy.deepcopy(typed)
        strict["config"]["fail_open"] = False
        # The EXTENSION_CONFIG as ECDS would deliver it, for the HTTP_FILTER patch's config_discovery
        # (ADS is replaced by a file source: validate has no control plane).
        ecds = tmp_path / "nd_filter.ecds.yaml"
        ecds.write_text(yaml.safe_dump({"version_info": "1", "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": ext["name"], "typed_config": typed}]}, sort_keys=False))
        discovered = copy.deepcopy(http)
        assert discovered["config_discovery"]["config_source"].pop("ads") == {}
        discovered["config_discovery"]["config_source"]["path_config_source"] = {"path": str(ecds)}
        discovered["config_discovery"]["config_source"]["resource_api_version"] = "V3"
        assert discovered["config_discovery"]["type_urls"] == [WASM_TYPE]
        cfg = bootstrap([
            [{"name": ext["name"], "typed_config": typed}],
            [{"name": ext["name"], "typed_config": strict}],
            [discovered],
        ], plugin_config)
        rc, out = envoy_validate(tools, cfg, tmp_path)
        assert rc == 0 and "OK" in out, out[-3000:]


def test_envoy_validate_refuses_a_bad_plugin_config(render, tools, filter_wasm, tmp_path):
    """The check above can fail: an out-of-range weight is refused by the filter's on_configure."""
    wp = next(d for d in docs(render("migration-wasmplugin")) if d["kind"] == "WasmPlugin")
    bad = copy.deepcopy(wp)
    bad["spec"]["pluginConfig"]["rust_weight_bp"] = 20000
    rc, out = envoy_validate(tools, bootstrap([[wasmplugin_as_envoy(bad, filter_wasm, False)]],
                                              bad["spec"]["pluginConfig"]), tmp_path)
    assert rc != 0 and "rust_weight_bp" in out, out[-2000:]


def test_bare_wasm_header_is_not_a_plugin(tools, tmp_path):
    """Why the real module is needed: Envoy refuses a module without the proxy-wasm ABI."""
    module = tmp_path / "empty.wasm"
    module.write_bytes(b"\0asm\1\0\0\0")
    cfg = {"name": "x", "typed_config": {"@type": WASM_TYPE, "config": {
        "name": "x", "root_id": "x", "vm_config": {"runtime": "envoy.wasm.runtime.v8",
                                                   "code": {"local": {"filename": str(module)}}}}}}
    plugin = {"backends": {"python": {"cluster": "p"}, "rust": {"cluster": "r"}}}
    rc, out = envoy_validate(tools, bootstrap([[cfg]], plugin), tmp_path)
    assert rc != 0 and "Unable to create Wasm plugin" in out


def test_proxy_stats_bootstrap_passes_envoy_validate(render, tools, filter_wasm, tmp_path):
    """The chart's bootstrap override (custom_bootstrap.json, merged by Istio into the
    proxy's bootstrap) with the stats matcher Istio builds from proxyStatsMatcher: Envoy
    accepts it next to the filter; a broken tag regex is refused."""
    documents = docs(render("migration-wasmplugin"))
    cm = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-stats-bootstrap"))
    override = json.loads(cm["data"]["custom_bootstrap.json"])
    wp = next(d for d in documents if d["kind"] == "WasmPlugin")
    cfg = bootstrap([[wasmplugin_as_envoy(wp, filter_wasm, False)]], wp["spec"]["pluginConfig"])
    cfg["stats_config"] = {**override["stats_config"], "stats_matcher": {"inclusion_list": {"patterns": [
        {"safe_regex": {"regex": ".*nd_filter_.*"}}]}}}
    rc, out = envoy_validate(tools, cfg, tmp_path)
    assert rc == 0 and "OK" in out, out[-3000:]
    broken = copy.deepcopy(cfg)
    broken["stats_config"]["stats_tags"][0]["regex"] = "^wasmcustom(("
    rc, out = envoy_validate(tools, broken, tmp_path, "broken.yaml")
    assert rc != 0, out[-2000:]
