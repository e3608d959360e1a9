"""`pip install ./python` works: the wheel holds the package, the OpenAPI
document (python/reference_service/openapi.yaml links to docs/openapi.yaml)
and the `reference-service` command, which serves from a venv with no
PYTHONPATH and no checkout in sight. Offline: the wheel is built with the
project venv's setuptools (--no-build-isolation) and installed without
dependencies into a venv that sees the project venv's packages (a .pth file),
as deploy/docker/python.Dockerfile installs it over the runtime lock."""

from __future__ import annotations

import email
import json
import os
import shutil
import signal
import socket
import subprocess
import sys
import sysconfig
import time
import zipfile
from pathlib import Path

import httpx
import pytest
import yaml
from conftest import REPO, example


def run(*args: str | Path, **kwargs) -> subprocess.CompletedProcess:
    r = subprocess.run([str(a) for a in args], capture_output=True, text=True, timeout=180, **kwargs)
    assert r.returncode == 0, f"{args}: {r.stdout[-2000:]}{r.stderr[-2000:]}"
    return r


def clean_env() -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if k not in ("PYTHONPATH", "PYTHONHOME")}
    for name in ("MODEL_PATH", "PORT", "HOST", "DEFAULT_MODEL", "MAX_BODY_BYTES", "MAX_SERIES", "ALLOW_PICKLE",
                 "API_PROFILE", "LOG_FORMAT", "LOG_LEVEL"):
        env.pop(name, None)
    return env


@pytest.fixture(scope="module")
def wheel(tmp_path_factory) -> Path:
    """Built as the Dockerfile builds it: python/ and docs/openapi.yaml in the
    repository's layout (so the symlink resolves), nothing else."""
    root = tmp_path_factory.mktemp("checkout")
    src = root / "python"
    src.mkdir()
    shutil.copy(REPO / "python/pyproject.toml", src / "pyproject.toml")
    shutil.copytree(REPO / "python/reference_service", src / "reference_service", symlinks=True,
                    ignore=shutil.ignore_patterns("__pycache__"))
    assert (src / "reference_service/openapi.yaml").is_symlink()
    (root / "docs").mkdir()
    shutil.copy(REPO / "docs/openapi.yaml", root / "docs/openapi.yaml")
    dist = tmp_path_factory.mktemp("dist")
    run(sys.executable, "-m", "pip", "wheel", "--no-deps", "--no-build-isolation", "--no-index", "-q",
        src, "-w", dist)
    (whl,) = dist.glob("neuralforecast_reference_service-*.whl")
    return whl


def test_wheel_contents(wheel):
    with zipfile.ZipFile(wheel) as z:
        names = set(z.namelist())
        assert {"reference_service/__init__.py", "reference_service/__main__.py", "reference_service/settings.py",
                "reference_service/openapi.yaml", "reference_service/py.typed"} <= names
        assert z.read("reference_service/openapi.yaml") == (REPO / "docs/openapi.yaml").read_bytes()
        info = next(n for n in names if n.endswith(".dist-info/METADATA"))
        meta = email.message_from_bytes(z.read(info))
        entry_points = z.read(info.replace("METADATA", "entry_points.txt")).decode()
    assert "reference-service = reference_service.__main__:main" in entry_points
    assert meta["Requires-Python"] == "<3.12,>=3.11"
    requires = {r.split(";")[0].strip() for r in meta.get_all("Requires-Dist") or []}
    runtime = [line.split("#")[0].strip() for line in (REPO / "python/requirements.in").read_text().splitlines()]
    assert requires == {r for r in runtime if r}, "pyproject's dependencies are requirements.in's names"
    assert not any(n.startswith(("tests/", "loadtest/", "fixture_specs/")) or n.endswith("make_fixtures.py")
                   for n in names)


@pytest.fixture(scope="module")
def installed(wheel, tmp_path_factory) -> Path:
    """A venv with the wheel installed and the project venv's packages visible."""
    venv = tmp_path_factory.mktemp("venv")
    run(sys.executable, "-m", "venv", "--without-pip", venv)
    site = Path(sysconfig.get_path("purelib", vars={"base": str(venv), "platbase": str(venv)}))
    (site / "project-venv.pth").write_text(sysconfig.get_path("purelib") + "\n")
    run(venv / "bin/python", "-m", "pip", "install", "--no-deps", "--no-index", "-q", wheel, env=clean_env())
    return venv


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def test_console_script_help(installed, tmp_path):
    r = run(installed / "bin/reference-service", "--help", cwd=tmp_path, env=clean_env())
    assert "usage: reference-service" in r.stdout and "MODEL_PATH" in r.stdout
    r = run(installed / "bin/python", "-c", "import reference_service; print(reference_service.__file__)",
            cwd=tmp_path, env=clean_env())
    assert r.stdout.strip().startswith(str(installed)), r.stdout


def test_installed_service_serves(installed, models_dir, tmp_path):
    port = free_port()
    env = dict(clean_env(), LOG_FORMAT="json")
    proc = subprocess.Popen([str(installed / "bin/reference-service"), "--model-path", str(models_dir),
                             "--host", "127.0.0.1", "--port", str(port)],
                            cwd=tmp_path, env=env, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE, text=True)
    url = f"http://127.0.0.1:{port}"
    try:
        deadline = time.monotonic() + 120
        while True:
            assert proc.poll() is None, proc.stderr.read() if proc.stderr else ""
            try:
                if httpx.get(f"{url}/ready", timeout=2).status_code == 200:
                    break
            except httpx.TransportError:
                pass
            assert time.monotonic() < deadline, "not ready in 120 s"
            time.sleep(0.2)
        assert httpx.get(f"{url}/openapi.json").json() == yaml.safe_load((REPO / "docs/openapi.yaml").read_text())
        resp = httpx.post(f"{url}/predict", params={"model": "mlp_d_standard"}, json=example(), timeout=60)
        assert resp.status_code == 200, resp.text[:500]
    finally:
        proc.send_signal(signal.SIGTERM)
        _, err = proc.communicate(timeout=60)
    # uvicorn drains, then re-raises the SIGTERM it caught (the default action ends the process)
    assert proc.returncode in (0, -signal.SIGTERM), err[-2000:]
    lines = [json.loads(line) for line in err.splitlines()]
    assert all(set(line) == {"timestamp", "level", "fields", "target"} for line in lines)
    loaded = [line["fields"] for line in lines if line["fields"]["message"] == "bundle loaded"]
    assert sorted(f["bundle"] for f in loaded) == ["mlp_cat", "mlp_d_standard"]
    assert any(line["fields"]["message"] == "ready" for line in lines)
