"""The release workflow (.github/workflows/release.yml), validated offline: no
Docker engine and no registry here, so nothing is built or pushed. yamllint,
zizmor (GitHub's workflow schema plus its security audits) and shellcheck of
every run: script; the structure that matters: every Dockerfile in
deploy/docker built and pushed under the names the chart's values and profiles
use, the Wasm module pushed in a form Istio's WasmPlugin pulls, the chart
pushed after the images. The version gate and the digest summary are run here
for real (bash and helm): against the chart as it is, and against broken
copies of it. docs/release.md names only paths that exist and builds the same
images by hand."""

import json
import os
import re
import shutil
import subprocess
from pathlib import Path

import pytest
import yaml
from k8s_support import CHART, REPO

# Shared with the security workflow's tests: the yamllint rules, the zizmor
# venv (scripts/rust-tools.sh) and the step helpers.
from test_security_workflow import YAMLLINT_CFG, one_step, rust_tools  # noqa: F401

WORKFLOW = REPO / ".github/workflows/release.yml"
SECURITY = REPO / ".github/workflows/security.yml"
DOCKERFILES = sorted(p.relative_to(REPO).as_posix() for p in (REPO / "deploy/docker").glob("*.Dockerfile"))
DOCS = REPO / "docs/release.md"
FAKE_DIGEST = "sha256:" + "ab" * 32
FAKE_MODULE = "cd" * 32


def load(path):
    wf = yaml.safe_load(Path(path).read_text())
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    wf["on"] = wf.pop(True, wf.get("on"))
    return wf


@pytest.fixture(scope="module")
def workflow():
    return load(WORKFLOW)


@pytest.fixture(scope="module")
def matrix(workflow):
    return {i["name"]: i for i in workflow["jobs"]["image"]["strategy"]["matrix"]["image"]}


def gate_step(workflow):
    (step,) = [s for s in workflow["jobs"]["version"]["steps"] if s.get("id") == "gate"]
    return step


def named_step(job, name):
    (step,) = [s for s in job["steps"] if s.get("name") == name]
    return step


def chart_meta(chart=CHART):
    return yaml.safe_load((chart / "Chart.yaml").read_text())


def owner_from_chart_home():
    home = chart_meta()["home"]
    m = re.fullmatch(r"https://github\.com/([^/]+)/[^/]+", home)
    assert m, home
    return m.group(1)


def split_ref(ref):
    """ghcr.io/o/name:tag or oci://ghcr.io/o/name:tag -> (ghcr.io/o, name, tag)."""
    ref = ref.removeprefix("oci://")
    repo, _, tag = ref.rpartition(":")
    prefix, _, name = repo.rpartition("/")
    return prefix, name, tag


def chart_image_refs():
    """Every image and oci:// module the chart's values and profiles name, read with PyYAML."""
    values = yaml.safe_load((CHART / "values.yaml").read_text())
    refs = {"values.yaml image": f"{values['image']['repository']}:{values['image']['tag']}",
            "values.yaml istio.filter.url": values["istio"]["filter"]["url"]}
    for profile in sorted((CHART / "profiles").glob("*.yaml")):
        v = yaml.safe_load(profile.read_text())
        if "image" in v:
            image = {**values["image"], **v["image"]}
            refs[f"{profile.name} image"] = f"{image['repository']}:{image['tag']}"
        url = v.get("istio", {}).get("filter", {}).get("url", "")
        if url.startswith("oci://"):
            refs[f"{profile.name} istio.filter.url"] = url
    return refs


# ------------------------------------------------------------------ linters


def test_yamllint(tools):
    r = subprocess.run([tools["YAMLLINT"], "-s", "-d", YAMLLINT_CFG, str(WORKFLOW)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_schema_and_audits(rust_tools):  # noqa: F811
    """Pedantic: unpinned actions, template injection, excessive or undocumented
    permissions, persisted checkout credentials, cache poisoning in a release."""
    r = subprocess.run([f"{rust_tools}/zizmor", "--offline", "--strict-collection", "--persona", "pedantic",
                        str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_refuses_an_expression_in_a_script(rust_tools, tmp_path):  # noqa: F811
    """What the audits would say if a run: script interpolated the pusher's input."""
    text = WORKFLOW.read_text()
    bad = tmp_path / "injected.yml"
    bad.write_text(text.replace('          echo "$IMAGE:$VERSION $DIGEST"\n',
                                '          echo "${{ github.event.head_commit.message }}"\n', 1))
    assert bad.read_text() != text
    r = subprocess.run([f"{rust_tools}/zizmor", "--offline", "--strict-collection", str(bad)],
                       capture_output=True, text=True, timeout=120)
    assert r.returncode != 0 and "template-injection" in r.stdout + r.stderr, r.stdout + r.stderr


def test_shellcheck_every_run_script(workflow, tools, tmp_path):
    """What actionlint would run on each script (bash, as the runner does)."""
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            if "run" in step:
                r = subprocess.run([tools["SHELLCHECK"], "-s", "bash", "-"], input=step["run"],
                                   capture_output=True, text=True)
                assert r.returncode == 0, f"{job_name} / {step['name']}:\n{r.stdout}{r.stderr}"


# ------------------------------------------------------------------ triggers, permissions, pins


def test_triggers_concurrency_and_default_permissions(workflow):
    assert workflow["on"] == {"push": {"tags": ["v*"]}, "workflow_dispatch": None}
    assert workflow["permissions"] == {"contents": "read"}
    conc = workflow["concurrency"]
    assert "github.ref" in conc["group"] and conc["cancel-in-progress"] is False


def test_packages_write_only_where_something_is_pushed(workflow):
    jobs = workflow["jobs"]
    assert "permissions" not in jobs["version"]  # read-only default
    for name in ("image", "chart"):
        assert jobs[name]["permissions"] == {"contents": "read", "packages": "write"}, name
    assert set(jobs) == {"version", "image", "chart"}


def test_every_action_pinned_to_a_commit_and_the_same_as_elsewhere():
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", WORKFLOW.read_text(), re.M)
    assert len(uses) >= 8
    elsewhere = dict(re.findall(r"uses:\s*([^@\s]+)@(\S+)", SECURITY.read_text()))
    for ref, comment in uses:
        name, _, version = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", version), f"{name} is not pinned to a commit: {ref}"
        assert re.fullmatch(r"\s+# v?\d+\.\d+\.\d+", comment), f"{ref}: say which release tag the commit is"
        if name in elsewhere:
            assert version == elsewhere[name], f"{name}: security.yml pins {elsewhere[name]}"


def test_no_expression_inside_a_script(workflow):
    """Values reach scripts through env: only (template injection)."""
    for job_name, job in workflow["jobs"].items():
        for step in job["steps"]:
            assert "${{" not in step.get("run", ""), f"{job_name} / {step['name']}"


def test_checkouts_do_not_persist_credentials(workflow):
    for name, job in workflow["jobs"].items():
        checkout = one_step(job, "actions/checkout")
        assert checkout["with"]["persist-credentials"] is False, name


# ------------------------------------------------------------------ what is built and where it goes


def test_every_dockerfile_is_built_and_pushed(workflow, matrix):
    assert len(DOCKERFILES) == 3, DOCKERFILES
    assert sorted(i["dockerfile"] for i in matrix.values()) == DOCKERFILES
    job = workflow["jobs"]["image"]
    assert job["needs"] == "version"
    assert job["env"]["IMAGE"] == "${{ needs.version.outputs.registry }}/${{ matrix.image.name }}"
    assert job["env"]["VERSION"] == "${{ needs.version.outputs.version }}"
    build = one_step(job, "docker/build-push-action")
    w = build["with"]
    assert w["context"] == "." and w["file"] == "${{ matrix.image.dockerfile }}"
    assert w["push"] is True
    assert w["tags"].splitlines() == ["${{ env.IMAGE }}:${{ env.VERSION }}", "${{ env.IMAGE }}:${{ github.sha }}"]
    assert not any("cache" in k for k in w), "no build cache in a release (cache poisoning)"
    steps = [s.get("uses", "").split("@")[0] for s in job["steps"]]
    assert steps.index("docker/setup-buildx-action") < steps.index("docker/build-push-action")
    login = one_step(job, "docker/login-action")["with"]
    assert login == {"registry": "ghcr.io", "username": "${{ github.actor }}",
                     "password": "${{ secrets.GITHUB_TOKEN }}"}


def test_pushed_names_are_the_repositories_the_chart_runs(workflow, matrix):
    """values.yaml, profiles/*.yaml (PyYAML) and the WasmPlugin in istio/ name
    exactly the three images this workflow pushes, at Chart.yaml's version,
    under ghcr.io/<the owner of Chart.yaml's home>."""
    meta = chart_meta()
    assert meta["appVersion"] == meta["version"]
    refs = chart_image_refs()
    assert {"values.yaml image", "python.yaml image", "values.yaml istio.filter.url"} <= set(refs)
    (plugin,) = [d for d in yaml.safe_load_all((REPO / "istio/wasmplugin-oci.yaml").read_text()) if d]
    assert plugin["kind"] == "WasmPlugin"
    refs["istio/wasmplugin-oci.yaml"] = plugin["spec"]["url"]
    names = set()
    for where, ref in refs.items():
        prefix, name, tag = split_ref(ref)
        assert prefix == f"ghcr.io/{owner_from_chart_home().lower()}", (where, ref)
        assert tag == meta["appVersion"], (where, ref)
        names.add(name)
    assert names == set(matrix), f"chart: {names}, workflow: {set(matrix)}"
    assert set(gate_step(workflow)["env"]["BUILT"].split()) == set(matrix)
    by_dockerfile = {i["dockerfile"]: n for n, i in matrix.items()}
    assert split_ref(refs["values.yaml image"])[1] == by_dockerfile["deploy/docker/rust.Dockerfile"]
    assert split_ref(refs["python.yaml image"])[1] == by_dockerfile["deploy/docker/python.Dockerfile"]
    assert split_ref(refs["values.yaml istio.filter.url"])[1] == by_dockerfile["deploy/docker/wasm-filter.Dockerfile"]


def test_the_module_is_pushed_as_one_manifest_with_plugin_wasm_at_the_root(workflow, matrix):
    """Istio checks istio.filter.sha256 against the digest of the one image
    manifest it resolves: no attestation index around it. The image is the
    compat form it reads: plugin.wasm at the root of the only layer."""
    for name, item in matrix.items():
        if name == "nd-filter":
            assert str(item["provenance"]) == "false"
        else:
            assert str(item["provenance"]).startswith("mode=")
    build = one_step(workflow["jobs"]["image"], "docker/build-push-action")["with"]
    assert build["sbom"] is False and build["provenance"] == "${{ matrix.image.provenance }}"
    assert build["platforms"] == "linux/amd64"
    dockerfile = (REPO / matrix["nd-filter"]["dockerfile"]).read_text()
    stages = re.findall(r"^FROM\s+(\S+)", dockerfile, re.M)
    assert stages[-1] == "scratch"
    final = dockerfile.rsplit("\nFROM ", 1)[1]
    assert re.findall(r"^COPY .*", final, re.M) == ["COPY --from=build /out/plugin.wasm /plugin.wasm"]
    check = named_step(workflow["jobs"]["image"], "Check the module is what WasmPlugin pulls")
    assert check["if"] == "matrix.image.name == 'nd-filter'"
    for needle in ("imagetools inspect --raw", "/plugin.wasm", "0061736d", "tar+gzip", "tar.gzip"):
        assert needle in check["run"], needle


def test_the_chart_is_linted_and_pushed_after_the_images(workflow):
    job = workflow["jobs"]["chart"]
    assert job["needs"] == ["version", "image"]
    (step,) = [s for s in job["steps"] if "run" in s]
    run = step["run"]
    assert 'helm lint --strict "$CHART"' in run and '"$CHART"/profiles/*.yaml' in run
    assert 'helm package "$CHART"' in run
    assert 'helm push "$package" "oci://$REGISTRY/charts"' in run
    assert "--password-stdin" in run and step["env"]["TOKEN"] == "${{ secrets.GITHUB_TOKEN }}"
    assert step["env"]["CHART"] == CHART.relative_to(REPO).as_posix()
    assert "GITHUB_STEP_SUMMARY" in run and "Digest: " in run
    assert one_step(job, "Azure/setup-helm")["with"]["version"] == "v4.1.4"


# ------------------------------------------------------------------ the version gate, run


def run_gate(workflow, tools, tmp_path, ref="refs/tags/v0.1.0", owner=None, chart=CHART):
    step = gate_step(workflow)
    out, summary = tmp_path / "output", tmp_path / "summary"
    out.write_text("")
    summary.write_text("")
    helm_home = tmp_path / "helm-home"
    env = dict(os.environ, **step["env"])
    env.update(CHART=str(chart), GITHUB_REF=ref, GITHUB_REF_NAME=ref.rsplit("/", 1)[1],
               GITHUB_REPOSITORY_OWNER=owner or owner_from_chart_home(),
               GITHUB_OUTPUT=str(out), GITHUB_STEP_SUMMARY=str(summary),
               PATH=f"{Path(tools['HELM']).parent}{os.pathsep}{os.environ['PATH']}",
               HELM_CACHE_HOME=str(helm_home / "cache"), HELM_CONFIG_HOME=str(helm_home / "config"),
               HELM_DATA_HOME=str(helm_home / "data"))
    # As the runner runs an unnamed shell: bash -e on the script file.
    script = tmp_path / "gate.sh"
    script.write_text(step["run"])
    r = subprocess.run(["bash", "-e", str(script)], cwd=REPO, env=env, capture_output=True, text=True,
                       timeout=300)
    outputs = dict(line.split("=", 1) for line in out.read_text().splitlines())
    return r, outputs, summary.read_text()


def test_gate_passes_on_the_chart_as_it_is(workflow, tools, tmp_path):
    version = chart_meta()["appVersion"]
    r, outputs, summary = run_gate(workflow, tools, tmp_path, ref=f"refs/tags/v{version}")
    assert r.returncode == 0, r.stdout + r.stderr
    assert "::warning::" not in r.stdout + r.stderr
    assert outputs == {"version": version, "registry": f"ghcr.io/{owner_from_chart_home().lower()}"}
    job = workflow["jobs"]["version"]
    assert job["outputs"] == {"version": "${{ steps.gate.outputs.version }}",
                              "registry": "${{ steps.gate.outputs.registry }}"}
    for ref in chart_image_refs().values():
        assert ref.removeprefix("oci://") in summary


def test_gate_lowercases_the_owner_and_warns_a_fork(workflow, tools, tmp_path):
    version = chart_meta()["appVersion"]
    r, outputs, _ = run_gate(workflow, tools, tmp_path, ref=f"refs/tags/v{version}", owner="Some-Fork")
    assert r.returncode == 0, r.stdout + r.stderr
    assert outputs["registry"] == "ghcr.io/some-fork"
    assert r.stdout.count("::warning::") == 3 and "--set image.repository=ghcr.io/some-fork/" in r.stdout


@pytest.mark.parametrize("ref, expect", [
    ("refs/tags/v0.0.0-other", "appVersion is"),
    ("refs/tags/v99.0.0", "appVersion is"),
    ("refs/heads/main", "runs on a tag"),
    ("refs/tags/v1.0", "is not v<major>"),
    ("refs/tags/v1.0.0+build", "is not v<major>"),
])
def test_gate_refuses_a_tag_that_is_not_the_chart(workflow, tools, tmp_path, ref, expect):
    r, outputs, _ = run_gate(workflow, tools, tmp_path, ref=ref)
    assert r.returncode != 0 and expect in r.stdout, r.stdout + r.stderr
    assert outputs == {}


@pytest.mark.parametrize("where, old, new, expect", [
    ("profiles/python.yaml", 'tag: "{v}"', 'tag: "0.0.9"', "neuralforecast-python:0.0.9: tag 0.0.9"),
    ("values.yaml", 'tag: "{v}"', 'tag: "0.0.9"', "neuro-divergent:0.0.9: tag 0.0.9"),
    ("values.yaml", "nd-filter:{v}", "nd-filter:0.0.9", "nd-filter:0.0.9: tag 0.0.9"),
    ("profiles/migration-wasmplugin.yaml", "/nd-filter:", "/other-filter:", "which this workflow does not build"),
    ("values.yaml", "/neuro-divergent/neuro-divergent\n", "/neuro-divergent/renamed\n",
     "no image the chart renders is neuro-divergent"),
    ("values.yaml", 'digest: ""', 'digest: "sha256:' + "0" * 64 + '"', "by digest"),
    ("Chart.yaml", "version: {v}", "version: 0.0.9", "Chart.yaml version is 0.0.9"),
])
def test_gate_refuses_a_chart_that_points_elsewhere(workflow, tools, tmp_path, where, old, new, expect):
    version = chart_meta()["appVersion"]
    chart = tmp_path / "chart"
    shutil.copytree(CHART, chart)
    f = chart / where
    text = f.read_text()
    old, new = old.format(v=version), new.format(v=version)
    assert old in text, (where, old)
    f.write_text(text.replace(old, new, 1))
    r, outputs, _ = run_gate(workflow, tools, tmp_path, ref=f"refs/tags/v{version}", chart=chart)
    assert r.returncode != 0 and expect in r.stdout, r.stdout + r.stderr
    assert outputs == {}


# ------------------------------------------------------------------ the digest summary, run


def run_record(workflow, tmp_path, name, digest=FAKE_DIGEST, module=""):
    job = workflow["jobs"]["image"]
    step = named_step(job, "Record the digest")
    assert step["env"] == {"DIGEST": "${{ steps.build.outputs.digest }}",
                           "MODULE_SHA256": "${{ steps.module.outputs.sha256 }}"}
    assert one_step(job, "docker/build-push-action")["id"] == "build"
    summary = tmp_path / f"summary-{name}"
    summary.write_text("")
    env = dict(os.environ, NAME=name, IMAGE=f"ghcr.io/neuro-divergent/{name}", VERSION="0.1.0",
               DIGEST=digest, MODULE_SHA256=module, GITHUB_SHA="f" * 40, GITHUB_STEP_SUMMARY=str(summary))
    script = tmp_path / "record.sh"
    script.write_text(step["run"])
    r = subprocess.run(["bash", "-e", str(script)], cwd=REPO, env=env, capture_output=True, text=True)
    return r, summary.read_text()


def test_summary_pins_each_digest_in_a_form_the_chart_renders(workflow, matrix, helm, tmp_path):
    """The --set lines the summary prints, given to helm: the Deployment runs
    repository@digest, the WasmPlugin carries the manifest digest as sha256."""
    schema = json.loads((CHART / "values.schema.json").read_text())
    assert schema["properties"]["image"]["properties"]["digest"]["pattern"] == "^(sha256:[a-f0-9]{64})?$"
    for name in matrix:
        r, summary = run_record(workflow, tmp_path, name, module=FAKE_MODULE if name == "nd-filter" else "")
        assert r.returncode == 0, r.stdout + r.stderr
        assert FAKE_DIGEST in summary
        (pin,) = [line for line in summary.splitlines() if line.startswith(("--set", "-f "))]
        args = [a for a in pin.split() if a]
        if name == "nd-filter":
            args = ["-f", str(CHART / "profiles/migration-wasmplugin.yaml"), *args]
            assert FAKE_MODULE in summary
        args = [str(REPO / a) if a.startswith("helm/") else a for a in args]
        out = helm("template", "neuro-divergent", str(CHART), *args).stdout
        if name == "nd-filter":
            assert f"sha256: {FAKE_DIGEST.removeprefix('sha256:')}" in out
            assert "url: oci://ghcr.io/neuro-divergent/nd-filter:0.1.0" in out
        else:
            assert f'image: "ghcr.io/neuro-divergent/{name}@{FAKE_DIGEST}"' in out


@pytest.mark.parametrize("name, digest, module", [
    ("neuro-divergent", "", ""),
    ("neuro-divergent", "sha256:short", ""),
    ("nd-filter", FAKE_DIGEST, ""),
    ("unknown", FAKE_DIGEST, ""),
])
def test_summary_refuses_a_missing_digest(workflow, tmp_path, name, digest, module):
    r, _ = run_record(workflow, tmp_path, name, digest=digest, module=module)
    assert r.returncode != 0 and "::error::" in r.stdout, r.stdout + r.stderr


# ------------------------------------------------------------------ docs/release.md


def test_docs_name_only_paths_that_exist():
    text = DOCS.read_text()
    paths = set(re.findall(r"(?<![\w./:-])((?:\.github|deploy|helm|istio|docs|tests|scripts|wasm-filter)"
                           r"/[\w./*-]*\w)", text))
    assert len(paths) >= 8
    for p in paths:
        matches = list(REPO.glob(p)) if "*" in p else [REPO / p]
        assert matches and all(m.exists() for m in matches), p


def docs_commands():
    """The shell commands in docs/release.md, continuation lines joined."""
    text = DOCS.read_text()
    return [c.strip() for c in re.sub(r"\\\n\s*", "", text).splitlines()]


def test_docs_build_what_the_workflow_builds(matrix):
    text = DOCS.read_text()
    for name, item in matrix.items():
        (push,) = [c for c in docs_commands() if c.startswith("docker buildx build")
                   and f"-f {item['dockerfile']}" in c and "--push" in c]
        assert re.search(rf'-t "\$REG/{name}:\$V"', push), push
        assert ("--provenance=false" in push) == (name == "nd-filter"), push
    for needle in ("--provenance=false", "image.digest", "istio.filter.sha256", "helm package", "helm push",
                   "oci://", ".github/workflows/release.yml", "--set image.repository="):
        assert needle in text, needle
