"""The chart and the static manifests: lint, render, schemas, unknown fields,
yamllint, and the contracts between the pieces (names, routes, Flagger)."""

import copy
import json
import re
import subprocess

import jsonschema
import k8s_strict as strict
import pytest
import yaml
from k8s_support import CHART, HERE, NAMESPACE, PROFILES, REPO, docs, find, profile_args, release_for

FLAGGER_CRD = HERE / "schemas" / "flagger-crd.yaml"
ISTIO_DIR = REPO / "istio"


# ------------------------------------------------------------------ helpers


@pytest.fixture(scope="session")
def flagger_schemas():
    if not FLAGGER_CRD.exists():
        pytest.fail(f"{FLAGGER_CRD} is missing (tests/k8s/schemas, from fluxcd/flagger)")
    out = {}
    for crd in yaml.safe_load_all(FLAGGER_CRD.read_text()):
        if crd:
            for v in crd["spec"]["versions"]:
                out[(crd["spec"]["group"], crd["spec"]["names"]["kind"], v["name"])] = v["schema"]["openAPIV3Schema"]
    return out


def _int_or_string(validator, value, instance, schema):
    if value and not (isinstance(instance, (int, str)) and not isinstance(instance, bool)):
        yield jsonschema.ValidationError(f"{instance!r} is not an int-or-string")


CRDValidator = jsonschema.validators.extend(jsonschema.Draft7Validator,
                                            {"x-kubernetes-int-or-string": _int_or_string})


def flagger_errors(doc, flagger_schemas):
    group, version = doc["apiVersion"].split("/")
    schema = flagger_schemas[(group, doc["kind"], version)]
    errors = [f"{'/'.join(map(str, e.absolute_path))}: {e.message}"
              for e in CRDValidator(schema).iter_errors(doc)]
    crd = {(group, doc["kind"]): schema}
    return errors + strict.unknown_fields(doc, crd)


@pytest.fixture(scope="session")
def node_validate(tools, tmp_path_factory):
    """node_validate(text) -> [{kind, name, status, error}] from tests/k8s/validate.mjs."""
    d = tmp_path_factory.mktemp("node-validate")
    counter = iter(range(10**6))

    def run(text):
        f = d / f"m{next(counter)}.yaml"
        f.write_text(text)
        r = subprocess.run(["node", str(HERE / "validate.mjs"), str(f)], capture_output=True, text=True,
                           cwd=HERE)
        if r.returncode != 0:
            pytest.fail(f"validate.mjs failed:\n{r.stderr}")
        return [json.loads(line) for line in r.stdout.splitlines()]

    return run


def check_manifests(text, node_validate, flagger_schemas):
    """Every document: its schema (node models / Flagger CRD / allow-list only for VPA) and no unknown field."""
    problems = []
    results = node_validate(text)
    documents = docs(text)
    assert len(results) == len(documents)
    for res, doc in zip(results, documents):
        where = f"{doc['kind']}/{doc['metadata']['name']}"
        if res["status"] == "invalid":
            problems.append(f"{where}: {res['error']}")
        elif res["status"] == "no-model":
            group = doc["apiVersion"].split("/")[0]
            if group == "flagger.app":
                problems += [f"{where}: {e}" for e in flagger_errors(doc, flagger_schemas)]
                continue
            if (group, doc["kind"]) != ("autoscaling.k8s.io", "VerticalPodAutoscaler"):
                problems.append(f"{where}: no schema for {doc['apiVersion']}")
        problems += [f"{where}: {e}" for e in strict.unknown_fields(doc, {})]
    return problems


# ------------------------------------------------------------------ lint + render


@pytest.mark.parametrize("profile", PROFILES)
def test_helm_lint_strict(helm, profile):
    r = helm("lint", "--strict", str(CHART), "-n", NAMESPACE, *profile_args(profile))
    assert "0 chart(s) failed" in r.stdout


@pytest.mark.parametrize("profile", PROFILES)
def test_rendered_manifests_are_valid(render, profile, node_validate, flagger_schemas):
    text = render(profile)
    problems = check_manifests(text, node_validate, flagger_schemas)
    assert not problems, "\n".join(problems)


@pytest.mark.parametrize("profile", PROFILES)
def test_yamllint_rendered(render, tools, tmp_path, profile):
    f = tmp_path / f"{profile}.yaml"
    f.write_text(render(profile))
    cfg = ("{extends: default, rules: {line-length: disable, document-start: disable, "
           "comments: {min-spaces-from-content: 1}, indentation: {spaces: consistent, indent-sequences: whatever}}}")
    r = subprocess.run([tools["YAMLLINT"], "-s", "-d", cfg, str(f)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_vpa_renders_only_in_a_safe_mode(render, helm, node_validate, flagger_schemas):
    text = render("default", "--set", "vpa.enabled=true")
    vpa = find(docs(text), "VerticalPodAutoscaler")
    assert vpa["spec"]["updatePolicy"]["updateMode"] == "Off"
    assert not check_manifests(text, node_validate, flagger_schemas)
    r = helm("template", "x", str(CHART), "--set", "vpa.enabled=true", "--set", "vpa.updateMode=Auto", check=False)
    assert r.returncode != 0 and "vpa.updateMode" in r.stderr


# ------------------------------------------------------------------ the checks catch what they claim


def test_values_schema_refuses_circuit_breaker(helm):
    r = helm("template", "x", str(CHART), "--set", "trafficPolicy.circuitBreaker.consecutiveErrors=3", check=False)
    assert r.returncode != 0 and "circuitBreaker" in r.stderr


def test_values_schema_refuses_unknown_plugin_field(helm):
    r = helm("template", "x", str(CHART), "--set", "istio.filter.pluginConfig.shadow.shara_bp=1", check=False)
    assert r.returncode != 0 and "shara_bp" in r.stderr


def test_strictness_catches_what_schemas_accept(render, node_validate, flagger_schemas):
    """A circuitBreaker block passes Istio's schema; the allow-list refuses it."""
    dr = find(docs(render("default")), "DestinationRule")
    bad = copy.deepcopy(dr)
    bad["spec"]["trafficPolicy"]["circuitBreaker"] = {"consecutiveErrors": 3}
    text = yaml.safe_dump(bad)
    assert node_validate(text)[0]["status"] == "ok"  # the schema alone does not see it
    assert any("circuitBreaker: unknown field" in p for p in check_manifests(text, node_validate, flagger_schemas))


def test_schema_checks_catch_wrong_types(render, node_validate, flagger_schemas):
    documents = docs(render("canary"))
    vs = copy.deepcopy(find(documents, "VirtualService"))
    vs["spec"]["http"][1]["timeout"] = 30
    assert node_validate(yaml.safe_dump(vs))[0]["status"] == "invalid"
    canary = copy.deepcopy(find(documents, "Canary"))
    canary["spec"]["analysis"]["threshold"] = "five"
    canary["spec"]["analysis"]["stepWieght"] = 10
    errors = flagger_errors(canary, flagger_schemas)
    assert any("threshold" in e for e in errors) and any("stepWieght" in e for e in errors), errors


# ------------------------------------------------------------------ what the manifests say


def test_deployment_matches_the_design(render):
    documents = docs(render("default"))
    dep = find(documents, "Deployment")
    spec = dep["spec"]
    assert spec["strategy"]["rollingUpdate"] == {"maxSurge": 1, "maxUnavailable": 1}
    pod = spec["template"]["spec"]
    c = pod["containers"][0]
    assert c["readinessProbe"]["httpGet"]["path"] == "/ready"
    assert c["livenessProbe"]["httpGet"]["path"] == "/health"
    assert c["resources"] == {"requests": {"cpu": "250m", "memory": "512Mi"},
                              "limits": {"cpu": "500m", "memory": "1Gi"}}
    assert pod["securityContext"]["runAsNonRoot"] is True and pod["securityContext"]["runAsUser"] != 0
    assert c["securityContext"]["readOnlyRootFilesystem"] is True
    assert c["securityContext"]["capabilities"]["drop"] == ["ALL"]
    assert {"name": "tmp", "mountPath": "/tmp"} in c["volumeMounts"]
    assert any(v["name"] == "tmp" and "emptyDir" in v for v in pod["volumes"])
    env = {e["name"]: e.get("value") for e in c["env"]}
    cm = find(documents, "ConfigMap", dep["metadata"]["name"])
    mount = next(m for m in c["volumeMounts"] if m["name"] == "config")
    assert env["ND_CONFIG"] == f"{mount['mountPath']}/config.toml" and "config.toml" in cm["data"]


def test_python_profile_is_the_reference_service(render):
    documents = docs(render("python"))
    dep = find(documents, "Deployment")
    c = dep["spec"]["template"]["spec"]["containers"][0]
    assert dep["metadata"]["name"] == "neuralforecast-python"
    assert c["command"] == ["reference-service"]
    assert c["ports"][0]["containerPort"] == 8000
    assert c["resources"]["requests"] == {"cpu": "1", "memory": "2Gi"}
    assert "--host" in c["args"] and c["args"][c["args"].index("--host") + 1] == "0.0.0.0"
    assert find(documents, "Service")["spec"]["ports"][0]["port"] == 8000
    kinds = {d["kind"] for d in documents}
    assert "PrometheusRule" not in kinds and "Canary" not in kinds
    assert not any(d["kind"] == "ConfigMap" and "config.toml" in d.get("data", {}) for d in documents)


def test_hpa_scales_on_cpu_memory_and_requests_per_second(render):
    hpa = find(docs(render("default")), "HorizontalPodAutoscaler")
    kinds = {(m["type"], (m.get("resource") or m.get("pods", {}).get("metric", {})).get("name"))
             for m in hpa["spec"]["metrics"]}
    assert kinds == {("Resource", "cpu"), ("Resource", "memory"), ("Pods", "neuro_divergent_http_requests_per_second")}


def test_destination_rule_has_real_istio_fields(render):
    dr = find(docs(render("default")), "DestinationRule")
    tp = dr["spec"]["trafficPolicy"]
    assert set(tp["outlierDetection"]) >= {"consecutive5xxErrors", "interval", "baseEjectionTime", "maxEjectionPercent"}
    assert "tcp" in tp["connectionPool"] and "http" in tp["connectionPool"]
    assert dr["spec"]["host"] == f"neuro-divergent.{NAMESPACE}.svc.cluster.local"


def _routes(vs):
    return {r["name"]: r for r in vs["spec"]["http"]}


@pytest.mark.parametrize("profile", ["migration-wasmplugin", "migration-envoyfilter", "migration-wasmplugin-file"])
def test_split_route_follows_the_filter_header(render, profile):
    documents = docs(render(profile))
    vs = find(documents, "VirtualService", "forecast-predict")
    routes = _routes(vs)
    rust, python = routes["predict-rust"], routes["predict-python"]
    assert rust["match"][0]["headers"] == {"x-nd-backend": {"exact": "rust"}}
    assert rust["match"][0]["uri"] == {"prefix": "/predict"}
    for r in (rust, python):
        assert r["timeout"] == "30s"
        assert r["retries"]["attempts"] == 3 and r["retries"]["perTryTimeout"] == "10s"
    assert rust["route"][0]["destination"]["host"] == f"neuro-divergent.{NAMESPACE}.svc.cluster.local"
    assert python["route"][0]["destination"] == {
        "host": f"neuralforecast-python.{NAMESPACE}.svc.cluster.local", "port": {"number": 8000}}
    # Requests without the header (no filter) go to Python: the routes after predict-rust do not match it.
    names = [r["name"] for r in vs["spec"]["http"]]
    assert names.index("predict-rust") < names.index("predict-python")


def _plugin_configs(documents):
    for d in documents:
        if d["kind"] == "WasmPlugin":
            yield d["spec"]["pluginConfig"]
        if d["kind"] == "EnvoyFilter":
            for p in d["spec"]["configPatches"]:
                if p["applyTo"] == "EXTENSION_CONFIG":
                    yield json.loads(p["patch"]["value"]["typed_config"]["config"]["configuration"]["value"])


def _live_rust_shares(documents):
    """(what, Rust's share of live traffic, the share compared on Rust) for every split object."""
    for cfg in _plugin_configs(documents):
        yield "filter", cfg.get("rust_weight_bp", 0), cfg.get("shadow", {}).get("share_bp", 0)
    for d in documents:
        if d["kind"] != "VirtualService":
            continue
        for route in d["spec"].get("http", []):
            to_rust = [r.get("weight", 100) for r in route.get("route", [])
                       if r["destination"]["host"].startswith("neuro-divergent.")]
            if len(route.get("route", [])) > 1 and to_rust:  # a weighted split
                yield f"VirtualService {route['name']}", to_rust[0], route.get("mirrorPercentage", {}).get("value", 0)


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "python"])
def test_every_profile_starts_at_no_live_traffic_on_rust_with_comparison_on(render, profile):
    """Installing any profile as it is sends 0 % of live traffic to Rust and
    compares some on Rust (mirror / shadow): moving traffic is an explicit step."""
    shares = list(_live_rust_shares(docs(render(profile))))
    assert shares or not profile.startswith("migration"), f"{profile} renders no split"
    for what, live, compared in shares:
        assert live == 0, f"{profile}: {what} sends {live} of live traffic to Rust before any comparison"
        assert compared > 0, f"{profile}: {what} compares nothing on Rust"


def test_static_istio_manifests_and_the_install_section_start_at_zero():
    seen = 0
    for f in sorted(ISTIO_DIR.glob("*.yaml")):
        for what, live, compared in _live_rust_shares(docs(f.read_text())):
            seen += 1
            assert (live, compared > 0) == (0, True), f"istio/{f.name}: {what}: live {live}, compared {compared}"
    assert seen >= 4
    readme = (REPO / "helm/README.md").read_text()
    install = re.search(r"## Install\n.*?```sh\n(.*?)```", readme, re.S)
    assert install, "helm/README.md has an Install section with commands"
    first = install.group(1)  # the first commands a user runs
    used = re.findall(r"profiles/([\w-]+)\.yaml", first)
    assert "migration-wasmplugin" in used and set(used) <= set(PROFILES), used
    assert not re.search(r"rust_?[wW]eight\w*=[1-9]", first), "the first install step sets a Rust weight"


@pytest.mark.parametrize("profile", [p for p in PROFILES if p != "python"])
def test_the_filters_proxies_get_its_stats_tags(render, profile):
    """One bootstrap override per namespace the filter runs in, holding the stats_tags
    the alerts and gates rely on: the same list as the local Envoy's (deploy/local/envoy)."""
    documents = docs(render(profile))
    configs = [d for d in documents
               if d["kind"] == "ConfigMap" and d["metadata"]["name"] == "nd-filter-stats-bootstrap"]
    attached = {d["metadata"]["namespace"] for d in documents if d["kind"] in ("WasmPlugin", "EnvoyFilter")}
    assert {c["metadata"]["namespace"] for c in configs} == attached and len(configs) == len(attached)
    local = yaml.safe_load((REPO / "deploy/local/envoy/envoy.yaml").read_text())["stats_config"]["stats_tags"]
    for c in configs:
        assert json.loads(c["data"]["custom_bootstrap.json"]) == {"stats_config": {"stats_tags": local}}
    off = docs(render(profile, "--set", "istio.filter.proxyStats.enabled=false"))
    assert not [d for d in off if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-stats-bootstrap")]


def test_install_prints_the_proxy_annotations(helm):
    """`helm install` tells which pods need which annotations, with values a proxy reads."""
    r = helm("install", "neuro-divergent", str(CHART), "-n", NAMESPACE, "--dry-run=client",
             *profile_args("migration-envoyfilter"))
    notes = r.stdout.split("NOTES:", 1)[1]
    assert "0 basis points of live /predict traffic on Rust" in notes
    found = re.findall(r"^    proxy\.istio\.io/config: '(.*)'\n"
                       r"    sidecar\.istio\.io/bootstrapOverride: (\S+)$", notes, re.M)
    assert len(found) == 2, notes  # the gateway and the client sidecars
    for config, name in found:
        assert json.loads(config) == {"proxyStatsMatcher": {"inclusionRegexps": [".*nd_filter_.*"]}}
        assert name == "nd-filter-stats-bootstrap"
    patch = re.search(r"patch deployment istio-ingressgateway --type merge -p \\\n\s+'(.*)'", notes)
    annotations = json.loads(patch.group(1))["spec"]["template"]["metadata"]["annotations"]
    assert annotations == {"proxy.istio.io/config": found[0][0], "sidecar.istio.io/bootstrapOverride": found[0][1]}


@pytest.mark.parametrize("profile", ["migration-wasmplugin", "migration-envoyfilter", "canary"])
def test_filter_clusters_are_istio_names(render, profile):
    configs = list(_plugin_configs(docs(render(profile))))
    assert configs
    rust = "neuro-divergent-canary" if profile == "canary" else "neuro-divergent"  # shadowTarget
    for cfg in configs:
        assert cfg["backends"]["rust"]["cluster"] == f"outbound|8080||{rust}.{NAMESPACE}.svc.cluster.local"
        assert cfg["backends"]["rust"]["authority"] == f"{rust}.{NAMESPACE}.svc.cluster.local:8080"
        python_cluster = f"outbound|8000||neuralforecast-python.{NAMESPACE}.svc.cluster.local"
        assert cfg["backends"]["python"]["cluster"] == python_cluster


def test_wasmplugin_fields(render):
    wp = find(docs(render("migration-wasmplugin")), "WasmPlugin", "nd-filter-gateway")
    spec = wp["spec"]
    assert "match" not in spec  # a gateway: all its listeners are outbound
    assert spec["url"].startswith("oci://") and spec["failStrategy"] == "FAIL_OPEN"
    assert "phase" not in spec  # unset: next to the router, before route selection
    assert spec["selector"]["matchLabels"] == {"istio": "ingressgateway"}
    wp_file = find(docs(render("migration-wasmplugin-file")), "WasmPlugin", "nd-filter-gateway")
    assert wp_file["spec"]["url"].startswith("file:///")


def test_envoyfilter_patches_each_context(render):
    filters = [d for d in docs(render("migration-envoyfilter")) if d["kind"] == "EnvoyFilter"]
    by_name = {f["metadata"]["name"]: f for f in filters}
    assert set(by_name) == {"nd-filter-gateway", "nd-filter-sidecar"}
    assert by_name["nd-filter-gateway"]["metadata"]["namespace"] == "istio-system"
    seen = set()
    for ef in filters:
        contexts = {p["match"]["context"] for p in ef["spec"]["configPatches"]}
        assert len(contexts) == 1, "one context per EnvoyFilter (its workloadSelector picks those proxies)"
        for p in ef["spec"]["configPatches"]:
            seen.add((p["applyTo"], p["match"]["context"]))
            assert p["patch"]["value"]["name"] == "nd_filter"
            if p["applyTo"] == "HTTP_FILTER":
                assert p["patch"]["operation"] == "INSERT_BEFORE"
                sub = p["match"]["listener"]["filterChain"]["filter"]["subFilter"]["name"]
                assert sub == "envoy.filters.http.router"
                assert "config_discovery" in p["patch"]["value"]
            else:
                assert p["patch"]["operation"] == "ADD"
    assert seen == {(a, c) for a in ("EXTENSION_CONFIG", "HTTP_FILTER") for c in ("GATEWAY", "SIDECAR_OUTBOUND")}


def test_weighted_split_has_weights_and_mirror(render):
    vs = find(docs(render("migration-weighted", "--set", "istio.split.weighted.rustWeight=10")),
              "VirtualService", "forecast-predict")
    r = _routes(vs)["predict-weighted"]
    assert {d["destination"]["host"].split(".")[0]: d["weight"] for d in r["route"]} == {
        "neuro-divergent": 10, "neuralforecast-python": 90}
    assert r["mirror"]["host"].startswith("neuro-divergent.") and r["mirrorPercentage"] == {"value": 10}
    assert r["timeout"] == "30s" and r["retries"]["attempts"] == 3


def test_canary_and_the_split_never_own_the_same_object(render):
    """Flagger owns Service/DestinationRule/VirtualService <fullname>; the chart renders none of them,
    and the split VirtualService delegates its Rust branch to Flagger's."""
    documents = docs(render("canary"))
    canary = find(documents, "Canary")
    fullname = canary["spec"]["targetRef"]["name"]
    owned_by_flagger = {("Service", fullname), ("Service", f"{fullname}-primary"), ("Service", f"{fullname}-canary"),
                        ("VirtualService", fullname), ("DestinationRule", f"{fullname}-primary"),
                        ("DestinationRule", f"{fullname}-canary"), ("DestinationRule", fullname)}
    rendered = {(d["kind"], d["metadata"]["name"]) for d in documents}
    assert not rendered & owned_by_flagger
    svc = canary["spec"]["service"]
    assert svc["delegation"] is True and "hosts" not in svc and "gateways" not in svc
    vs = find(documents, "VirtualService", "forecast-predict")
    rust = _routes(vs)["predict-rust"]
    assert rust["delegate"] == {"name": fullname, "namespace": NAMESPACE} and "route" not in rust
    assert svc["timeout"] == "30s" and svc["retries"]["attempts"] == 3
    assert "outlierDetection" in svc["trafficPolicy"]


def test_canary_analysis(render):
    documents = docs(render("canary"))
    a = find(documents, "Canary")["spec"]["analysis"]
    assert (a["interval"], a["threshold"], a["stepWeight"], a["maxWeight"]) == ("30s", 5, 10, 50)
    metrics = {m["name"]: m for m in a["metrics"]}
    assert metrics["request-success-rate"]["thresholdRange"] == {"min": 99}
    assert metrics["request-duration"]["thresholdRange"] == {"max": 500}
    templates = {d["metadata"]["name"] for d in documents if d["kind"] == "MetricTemplate"}
    for m in a["metrics"]:
        if "templateRef" in m:
            assert m["templateRef"]["name"] in templates and m["templateRef"]["namespace"] == NAMESPACE
    assert {"error-ratio", "latency-p99", "shadow-mismatch-ratio"} <= set(metrics)


def test_load_test_webhook_posts_the_example_request(render):
    canary = find(docs(render("canary")), "Canary")
    hook = next(w for w in canary["spec"]["analysis"]["webhooks"] if w["name"] == "load-test")
    assert hook["type"] == "rollout" and hook["metadata"]["type"] == "cmd"
    cmd = hook["metadata"]["cmd"]
    assert cmd.startswith("hey ") and "-m POST" in cmd and "-T application/json" in cmd
    body = re.search(r"-d '([^']*)'", cmd).group(1)
    assert json.loads(body) == json.loads((REPO / "examples/predict-request.json").read_text())
    assert re.search(r"'http://neuro-divergent-canary\.forecast:8080/predict\?model=mlp_d_standard'$", cmd)


def test_chart_copy_of_the_example_request_is_current():
    ours = json.loads((CHART / "files/predict-request.json").read_text())
    assert ours == json.loads((REPO / "examples/predict-request.json").read_text()), \
        "cp examples/predict-request.json helm/neuro-divergent/files/"


def test_monitoring_selects_pods_flagger_does_not_relabel(render):
    documents = docs(render("canary"))
    sm = find(documents, "ServiceMonitor")
    canary = find(documents, "Canary")
    want = sm["spec"]["selector"]["matchLabels"]
    for side in ("primary", "canary"):
        assert canary["spec"]["service"][side]["labels"].items() >= want.items()
    pod_labels = find(documents, "Deployment")["spec"]["template"]["metadata"]["labels"]
    for kind in ("PodDisruptionBudget",):
        sel = find(documents, kind)["spec"]["selector"]["matchLabels"]
        assert "app" not in sel and pod_labels.items() >= sel.items()
    np_sel = find(documents, "NetworkPolicy")["spec"]["podSelector"]["matchLabels"]
    assert "app" not in np_sel and pod_labels.items() >= np_sel.items()


def test_dashboard_configmap(render):
    documents = docs(render("default"))
    cm = next(d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-dashboard"))
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    dash = json.loads(next(iter(cm["data"].values())))
    titles = " | ".join(p["title"].lower() for p in dash["panels"])
    for topic in ("split", "fallback", "breaker state", "shadow match ratio", "latency per backend"):
        assert topic in titles, topic
    assert all(t["expr"] for p in dash["panels"] for t in p["targets"])


# ------------------------------------------------------------------ static manifests under istio/


def test_static_istio_manifests_are_valid(node_validate, flagger_schemas):
    files = sorted(ISTIO_DIR.glob("*.yaml"))
    assert files, "istio/*.yaml missing (istio/render.sh)"
    for f in files:
        problems = check_manifests(f.read_text(), node_validate, flagger_schemas)
        assert not problems, f"{f.name}:\n" + "\n".join(problems)


QUICKSTART = REPO / "deploy/k8s/quickstart"


def test_quickstart_manifests_are_valid_and_fit_the_chart(node_validate, flagger_schemas, render):
    """docs/kubernetes.md's manifests: valid objects, and the names the chart's
    defaults expect (namespace with injection, the Gateway the split binds to, the
    claim both releases mount, the loader writing as the services' user)."""
    files = sorted(QUICKSTART.glob("*.yaml"))
    assert [f.name for f in files] == ["gateway.yaml", "models-loader.yaml", "models-pvc.yaml", "namespace.yaml"]
    objects = {}
    for f in files:
        problems = check_manifests(f.read_text(), node_validate, flagger_schemas)
        assert not problems, f"{f.name}:\n" + "\n".join(problems)
        for d in docs(f.read_text()):
            objects[d["kind"]] = d
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    ns = objects["Namespace"]
    assert ns["metadata"]["name"] == NAMESPACE and ns["metadata"]["labels"]["istio-injection"] == "enabled"
    gw = objects["Gateway"]
    assert f"{gw['metadata']['namespace']}/{gw['metadata']['name']}" in values["istio"]["split"]["gateways"]
    assert set(gw["spec"]["servers"][0]["hosts"]) == set(values["istio"]["split"]["hosts"])
    gateway_attachment = next(a for a in values["istio"]["filter"]["attachments"] if a["context"] == "GATEWAY")
    assert gw["spec"]["selector"] == gateway_attachment["selector"]
    pvc = objects["PersistentVolumeClaim"]
    assert pvc["metadata"]["name"] == values["models"]["volume"]["persistentVolumeClaim"]["claimName"]
    assert pvc["metadata"]["namespace"] == NAMESPACE
    loader = objects["Pod"]
    assert loader["spec"]["volumes"][0]["persistentVolumeClaim"]["claimName"] == pvc["metadata"]["name"]
    for profile in ("default", "python"):
        pod = find(docs(render(profile)), "Deployment")["spec"]["template"]["spec"]
        user = pod["securityContext"].get("runAsUser") or pod["containers"][0]["securityContext"]["runAsUser"]
        assert loader["spec"]["securityContext"]["runAsUser"] == user, profile
    python_image = yaml.safe_load((CHART / "profiles/python.yaml").read_text())["image"]
    assert loader["spec"]["containers"][0]["image"] == f"{python_image['repository']}:{python_image['tag']}"


def test_static_istio_manifests_match_the_chart(tools, tmp_path):
    """istio/*.yaml are the chart's output (istio/render.sh); they must not drift."""
    r = subprocess.run([str(ISTIO_DIR / "render.sh"), str(tmp_path)], capture_output=True, text=True,
                       env={"PATH": "/usr/bin:/bin", "HELM": tools["HELM"], "HOME": str(tmp_path)})
    assert r.returncode == 0, r.stderr
    for f in sorted(tmp_path.glob("*.yaml")):
        committed = ISTIO_DIR / f.name
        assert committed.exists() and committed.read_text() == f.read_text(), \
            f"istio/{f.name} is stale: run istio/render.sh"
    assert {f.name for f in tmp_path.glob("*.yaml")} == {f.name for f in ISTIO_DIR.glob("*.yaml")}


def test_release_names_used_by_profiles():
    assert release_for("python") == "neuralforecast-python" and release_for("canary") == "neuro-divergent"


def test_metric_names_exist(render):
    """Every nd_filter_* name the chart queries is in the filter's README table; every
    neuro_divergent_* name is in the service's docs/service.md (the live test checks /metrics too)."""
    text = render("canary") + (CHART / "dashboards/neuro-divergent.json").read_text()
    filter_readme = (REPO / "wasm-filter/README.md").read_text()
    service_doc = (REPO / "docs/service.md").read_text()
    for name in set(re.findall(r"\bnd_filter_[a-z_]+", text)):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        assert f"`{base}`" in filter_readme, f"{name} is not a filter metric (wasm-filter/README.md)"
    for name in set(re.findall(r"\bneuro_divergent_[a-z_]+", text)):
        base = re.sub(r"_(bucket|sum|count)$", "", name)
        if base == "neuro_divergent_http_requests_per_second":  # the HPA's adapter metric (helm/README.md)
            continue
        assert f"`{base}`" in service_doc, f"{name} is not a service metric (docs/service.md)"


# ------------------------------------------------------------------ API profiles

TEAM_PROFILES = sorted((REPO / "tests" / "profiles").glob("*/profile.toml"))


@pytest.mark.parametrize("path", TEAM_PROFILES, ids=[p.parent.name for p in TEAM_PROFILES])
def test_api_profile_reaches_both_services_and_the_filter(render, path):
    """apiProfile.toml: shipped verbatim in a ConfigMap both services read
    through ND_API_PROFILE (Rust) or API_PROFILE (Python; a change rolls the
    pods); the filter's shadow.answer
    is the one the Python reference derives from the same file."""
    import sys

    sys.path.insert(0, str(REPO / "python"))
    from reference_service import profile as profiles

    text = path.read_text()
    want = profiles.from_toml(text).shadow_answer()
    checksums = set()
    for chart_profile in ("python", "migration-wasmplugin", "migration-envoyfilter"):
        documents = docs(render(chart_profile, "--set-file", f"apiProfile.toml={path}"))
        deployment = find(documents, "Deployment")
        cm_name = deployment["metadata"]["name"] + "-api-profile"
        assert find(documents, "ConfigMap", cm_name)["data"]["profile.toml"].strip() == text.strip()
        pod = deployment["spec"]["template"]
        container = pod["spec"]["containers"][0]
        env = {e["name"]: e.get("value") for e in container["env"]}
        mount = next(m for m in container["volumeMounts"] if m["name"] == "api-profile")
        variable = "API_PROFILE" if chart_profile == "python" else "ND_API_PROFILE"
        assert env[variable] == mount["mountPath"] + "/profile.toml"
        assert ({"API_PROFILE", "ND_API_PROFILE"} - {variable}).isdisjoint(env)
        volume = next(v for v in pod["spec"]["volumes"] if v["name"] == "api-profile")
        assert volume["configMap"]["name"] == cm_name
        checksums.add(pod["metadata"]["annotations"]["checksum/api-profile"])
        if chart_profile != "python":
            configs = list(_plugin_configs(documents))
            assert configs and all(cfg["shadow"]["answer"] == want for cfg in configs), (configs, want)
    assert len(checksums) == 1


def test_api_profile_absent_or_overridden(render):
    """No profile: no ConfigMap, no API_PROFILE, the contract's answer shape;
    an explicit shadow.answer wins over the derived one; text that is not TOML
    fails the render."""
    documents = docs(render("migration-wasmplugin"))
    assert not [d for d in documents if d["kind"] == "ConfigMap" and d["metadata"]["name"].endswith("-api-profile")]
    container = find(documents, "Deployment")["spec"]["template"]["spec"]["containers"][0]
    assert {"API_PROFILE", "ND_API_PROFILE"}.isdisjoint(e["name"] for e in container["env"])
    assert all("answer" not in cfg["shadow"] for cfg in _plugin_configs(documents))
    path = REPO / "tests/profiles/columns_dict/profile.toml"
    explicit = '{"at": "/x", "orient": "records", "id": "u", "time": "t", "model_at": ""}'
    documents = docs(render("migration-wasmplugin", "--set-file", f"apiProfile.toml={path}",
                            "--set-json", f"istio.filter.pluginConfig.shadow.answer={explicit}"))
    assert [cfg["shadow"]["answer"] for cfg in _plugin_configs(documents)] == [json.loads(explicit)]


def test_api_profile_that_is_not_toml_fails_the_render(helm):
    r = helm("template", "neuro-divergent", str(CHART), "--set", "apiProfile.toml=x = [", check=False)
    assert r.returncode != 0 and "apiProfile.toml is not TOML" in r.stderr, r.stderr


def _readme_settings() -> dict[str, str]:
    """`config.toml` key -> environment variable, from README.md's table
    (generated from the Rust service's settings; a Rust test keeps it current)."""
    text = (REPO / "README.md").read_text()
    table = text.split("<!-- BEGIN generated from inference/server/src/config.rs -->", 1)[1]
    table = table.split("<!-- END generated -->", 1)[0]
    rows = {}
    for line in table.splitlines():
        cells = [c.strip().strip("`") for c in line.strip().strip("|").split("|")]
        if len(cells) == 5 and cells[1].startswith("ND_"):
            rows[cells[0]] = cells[1]
    return rows


def test_chart_speaks_the_services_setting_names(render):
    """values.config's keys are the service's config.toml keys (a typo would
    stop the pod at start), and every variable the chart sets on the Rust
    container is one of the service's ND_* names."""
    settings = _readme_settings()
    assert len(settings) >= 20, settings
    values = yaml.safe_load((REPO / "helm/neuro-divergent/values.yaml").read_text())
    keys = {f"{section}.{k}" for section, table in values["config"].items()
            if isinstance(table, dict) for k in table}
    assert keys and keys <= set(settings), keys - set(settings)
    path = REPO / "tests/profiles/columns_dict/profile.toml"
    documents = docs(render("migration-wasmplugin", "--set-file", f"apiProfile.toml={path}"))
    deployment = find(documents, "Deployment")
    container = deployment["spec"]["template"]["spec"]["containers"][0]
    names = {e["name"] for e in container["env"]}
    assert names and names <= set(settings.values()) | {"ND_CONFIG"}, names
    config = find(documents, "ConfigMap", deployment["metadata"]["name"])["data"]["config.toml"]
    import tomllib

    rendered = {f"{s}.{k}" for s, table in tomllib.loads(config).items() for k in table}
    assert rendered <= set(settings), rendered - set(settings)
