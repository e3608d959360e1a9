"""The rollback script (shellcheck, --dry-run prints and runs nothing) and the
Dockerfiles (kept honest to what the build does: no Docker engine here)."""

import os
import re
import subprocess

import pytest
from k8s_support import REPO

ROLLBACK = REPO / "deploy/scripts/rollback.sh"
DOCKER = REPO / "deploy/docker"


def test_shellcheck(tools):
    scripts = [ROLLBACK, REPO / "scripts/k8s-tools.sh", REPO / "istio/render.sh"]
    r = subprocess.run([tools["SHELLCHECK"], *map(str, scripts)], capture_output=True, text=True)
    assert r.returncode == 0, r.stdout + r.stderr


@pytest.fixture
def no_kubectl(tmp_path):
    """A PATH whose kubectl fails loudly: --dry-run must not call it."""
    bindir = tmp_path / "bin"
    bindir.mkdir()
    fake = bindir / "kubectl"
    fake.write_text("#!/bin/sh\necho 'kubectl was called' >&2\nexit 99\n")
    fake.chmod(0o755)
    return {**os.environ, "PATH": f"{bindir}:{os.environ['PATH']}"}


def dry_run(env, *args):
    r = subprocess.run([str(ROLLBACK), "--dry-run", *args], capture_output=True, text=True, env=env, timeout=30)
    assert r.returncode == 0, r.stderr
    assert "kubectl was called" not in r.stderr
    return [line.replace("\\", "") for line in r.stdout.splitlines()]


def test_dry_run_deployment(no_kubectl):
    lines = dry_run(no_kubectl, "--namespace", "forecast")
    assert lines == [
        "kubectl -n forecast get deployment neuro-divergent",
        "kubectl -n forecast rollout undo deployment/neuro-divergent",
        "kubectl -n forecast rollout status deployment/neuro-divergent --timeout=300s",
        "kubectl get --raw /api/v1/namespaces/forecast/services/neuro-divergent:8080/proxy/ready",
    ]


def test_dry_run_canary(no_kubectl):
    lines = dry_run(no_kubectl, "-n", "forecast", "--mode", "canary")
    assert "kubectl -n forecast rollout undo deployment/neuro-divergent" in lines
    assert any("patch canary neuro-divergent" in line and '"skipAnalysis":true' in line for line in lines)
    assert "kubectl -n forecast wait canary/neuro-divergent --for=condition=Promoted --timeout=300s" in lines


def test_dry_run_filter_weight_zero(no_kubectl):
    lines = dry_run(no_kubectl, "--mode", "filter")
    patch = [line for line in lines if " patch " in line]
    assert patch == ['kubectl -n istio-system patch wasmplugin nd-filter-gateway --type merge -p '
                     '{"spec":{"pluginConfig":{"rust_weight_bp":0}}}']


def test_bad_arguments_exit_2(no_kubectl):
    for args in (["--mode", "sideways"], ["--bogus"], ["--timeout", "soon"], ["--namespace"]):
        r = subprocess.run([str(ROLLBACK), *args], capture_output=True, text=True, env=no_kubectl)
        assert r.returncode == 2, (args, r.stderr)
        assert "kubectl was called" not in r.stderr


def _stages(dockerfile):
    return re.findall(r"^FROM\s+(\S+)(?:\s+AS\s+(\S+))?", dockerfile.read_text(), re.M)


def test_base_images_are_pinned_by_digest():
    """Every base image by digest, its tag beside it (what it is); both Rust
    builds use the same toolchain image."""
    seen, rust = 0, set()
    for f in sorted(DOCKER.glob("*.Dockerfile")):
        stages = _stages(f)
        names = {name for _, name in stages if name}
        for image, _ in stages:
            if image == "scratch" or image in names:
                continue
            seen += 1
            pinned = re.fullmatch(r"[\w./-]+:[\w.-]+@sha256:[0-9a-f]{64}", image)
            assert pinned, f"{f.name}: {image} is not pinned by digest"
            if image.startswith("rust:"):
                rust.add(image)
    assert seen >= 4 and len(rust) == 1, rust


def test_rust_image_is_static_and_non_root():
    text = (DOCKER / "rust.Dockerfile").read_text()
    stages = _stages(DOCKER / "rust.Dockerfile")
    assert stages[-1][0].startswith(("gcr.io/distroless/static", "scratch"))
    assert "--target x86_64-unknown-linux-musl" in text and "-p neuro-divergent" in text and "--locked" in text
    user = re.findall(r"^USER\s+(\S+)", text, re.M)[-1]
    assert not user.startswith(("0", "root"))
    assert re.search(r'^CMD \["serve"\]', text, re.M)


def test_filter_image_is_plugin_wasm_from_scratch():
    text = (DOCKER / "wasm-filter.Dockerfile").read_text()
    stages = _stages(DOCKER / "wasm-filter.Dockerfile")
    assert stages[-1][0] == "scratch"
    final = text[text.rindex("FROM scratch"):]
    assert re.findall(r"^COPY .* /plugin\.wasm$", final, re.M)
    assert "wasm-filter/build.sh" in text and (REPO / "wasm-filter/build.sh").exists()
    assert "target/wasm32-wasip1/release/wasm_filter.wasm" in (REPO / "wasm-filter/build.sh").read_text()


def test_python_image():
    text = (DOCKER / "python.Dockerfile").read_text()
    assert _stages(DOCKER / "python.Dockerfile")[0][0].startswith("python:3.11-slim")
    # the runtime lock only, hash-checked; then the package on top without dependencies
    assert "pip install --require-hashes -r /app/requirements.lock" in text
    assert "requirements-dev.lock" not in text
    assert "pip install --no-deps --no-build-isolation /src/python" in text
    assert re.findall(r"^USER\s+(\S+)", text, re.M)[-1].startswith("65532")
    assert 'CMD ["reference-service", ' in text and '"--host", "0.0.0.0"' in text


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in DOCKER.glob("*.Dockerfile")))
def test_dockerfile_copies_exist(dockerfile):
    """Every COPY source (build context = repository root) exists, and the
    Dockerfile-specific .dockerignore lets it through."""
    text = (DOCKER / dockerfile).read_text()
    ignore = (DOCKER / f"{dockerfile}.dockerignore").read_text()
    for src in re.findall(r"^COPY\s+(?!--from)(\S+)\s+\S+$", text, re.M) + \
            [s for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M) for s in line.split()[:-1]]:
        assert (REPO / src).exists(), f"{dockerfile}: COPY {src}: no such path"
        assert f"!{src}" in ignore or f"!{src}/**" in ignore, f"{dockerfile}: {src} is ignored"


@pytest.mark.parametrize("dockerfile", sorted(p.name for p in DOCKER.glob("*.Dockerfile")))
def test_dockerignore_admits_only_what_the_image_copies(dockerfile):
    """Each image's .dockerignore starts from nothing (`**`) and lets through
    only the sources its Dockerfile COPYs, so no other file reaches its context."""
    text = (DOCKER / dockerfile).read_text()
    sources = {s.rstrip("/") for line in re.findall(r"^COPY\s+(?!--from)(.+)$", text, re.M)
               for s in line.split()[:-1]}
    lines = [line.strip() for line in (DOCKER / f"{dockerfile}.dockerignore").read_text().splitlines()
             if line.strip() and not line.startswith("#")]
    assert lines[0] == "**", f"{dockerfile}.dockerignore must start by ignoring everything"
    admitted = {line[1:].removesuffix("/**") for line in lines if line.startswith("!")}
    assert admitted == sources, f"{dockerfile}: admitted {sorted(admitted)}, copied {sorted(sources)}"

