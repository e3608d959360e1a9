"""Fixtures for tests/k8s: the pinned tools (scripts/k8s-tools.sh; a missing
tool fails the run, it never skips), helm, the chart rendered per profile, and
the build products the live tests run. Helpers: k8s_support.py."""

import os
import subprocess
from pathlib import Path

import pytest
from k8s_support import CHART, NAMESPACE, REPO, cargo_artifact, profile_args, release_for


@pytest.fixture(scope="session")
def tools():
    r = subprocess.run([str(REPO / "scripts/k8s-tools.sh")], capture_output=True, text=True)
    if r.returncode != 0:
        pytest.fail(f"scripts/k8s-tools.sh failed ({r.returncode}):\n{r.stderr[-4000:]}")
    found = dict(line.split("=", 1) for line in r.stdout.splitlines() if "=" in line)
    for key, path in found.items():
        if not Path(path).exists():
            pytest.fail(f"{key}={path} does not exist after scripts/k8s-tools.sh")
    return found


@pytest.fixture(scope="session")
def helm(tools, tmp_path_factory):
    """helm(*args) -> CompletedProcess; HELM_*_HOME in a temp dir (no state in $HOME)."""
    home = tmp_path_factory.mktemp("helm-home")
    env = dict(os.environ, HELM_CACHE_HOME=str(home / "cache"), HELM_CONFIG_HOME=str(home / "config"),
               HELM_DATA_HOME=str(home / "data"))

    def run(*args, check=True):
        r = subprocess.run([tools["HELM"], *args], capture_output=True, text=True, env=env)
        if check and r.returncode != 0:
            pytest.fail(f"helm {' '.join(args)} failed:\n{r.stdout}\n{r.stderr}")
        return r

    return run


@pytest.fixture(scope="session")
def render(helm):
    """render(profile, *extra helm args) -> rendered text (cached per arguments)."""
    cache = {}

    def run(profile, *extra):
        key = (profile, extra)
        if key not in cache:
            cache[key] = helm("template", release_for(profile), str(CHART), "-n", NAMESPACE,
                              *profile_args(profile), *extra).stdout
        return cache[key]

    return run


@pytest.fixture(scope="session")
def rust_binary():
    return cargo_artifact("release/neuro-divergent", ["--release", "-p", "neuro-divergent"])


@pytest.fixture(scope="session")
def filter_wasm():
    return cargo_artifact("wasm32-wasip1/release/wasm_filter.wasm",
                          ["-p", "wasm-filter", "--target", "wasm32-wasip1", "--release", "--lib"])
