"""Helpers for tests/k8s: names, the chart's profiles, YAML as Kubernetes reads
it, and processes (started with setsid, stopped by PID). Fixtures are in
conftest.py; this module has its own name because tests/contract and
tests/filter have a conftest.py of their own.
"""

import os
import re
import socket
import subprocess
import sys
import time
from pathlib import Path

import pytest
import yaml

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))
from loadtest import envoy  # noqa: E402  (processes stopped by PID, shared with make run)

CHART = REPO / "helm" / "neuro-divergent"
PROFILES_DIR = CHART / "profiles"
RELEASE = "neuro-divergent"
NAMESPACE = "forecast"

# "default" is values.yaml alone; every file in profiles/ is a documented profile.
PROFILES = ["default"] + sorted(p.stem for p in PROFILES_DIR.glob("*.yaml"))


def release_for(profile):
    """Each profile is installed as its own release; the Python one under its own name."""
    return "neuralforecast-python" if profile == "python" else RELEASE


def profile_args(profile):
    return [] if profile == "default" else ["-f", str(PROFILES_DIR / f"{profile}.yaml")]


class K8sLoader(yaml.SafeLoader):
    """YAML as the API server reads it (Go): `1e-06` is a float, where YAML 1.1 (PyYAML) says string."""


K8sLoader.add_implicit_resolver(
    "tag:yaml.org,2002:float",
    re.compile(r"^[-+]?(?:[0-9]+(?:\.[0-9]*)?|\.[0-9]+)(?:[eE][-+]?[0-9]+)$"),
    list("-+0123456789."),
)


def docs(text):
    return [d for d in yaml.load_all(text, Loader=K8sLoader) if d]


def find(documents, kind, name=None):
    hits = [d for d in documents if d["kind"] == kind and (name is None or d["metadata"]["name"] == name)]
    assert hits, f"no {kind} {name or ''} rendered"
    return hits[0] if name or len(hits) == 1 else hits


# ----------------------------------------------------------------- processes


def free_port():
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


class Proc(envoy.Proc):
    """A child in its own session (setsid), stopped by its PID's process group
    (loadtest/envoy.py); its PID is also recorded next to its log."""

    def __init__(self, args, log_path, **kw):
        super().__init__(args, log_path, **kw)
        (self.log_path.parent / f"{self.log_path.stem}.pid").write_text(str(self.pid))

    def stop(self, timeout=30):
        super().stop(timeout)


def wait_http(url, proc, timeout=60.0, ok=(200,)):
    import httpx

    deadline = time.monotonic() + timeout
    last = None
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(f"process for {url} exited:\n{proc.log()[-3000:]}")
        try:
            r = httpx.get(url, timeout=2)
            if r.status_code in ok:
                return
            last = r.status_code
        except httpx.HTTPError as e:
            last = e
        time.sleep(0.2)
    pytest.fail(f"{url} not ready after {timeout}s (last: {last}):\n{proc.log()[-3000:]}")


def cargo_artifact(path, build_args):
    """A build product under target/, built with cargo if missing (a failed build fails the test)."""
    target = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
    artifact = target / path
    if not artifact.exists():
        r = subprocess.run(["cargo", "build", "--locked", *build_args], cwd=REPO, capture_output=True, text=True)
        if r.returncode != 0 or not artifact.exists():
            pytest.fail(f"cargo build {' '.join(build_args)} failed:\n{r.stderr[-4000:]}")
    return artifact
