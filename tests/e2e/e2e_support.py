"""Helpers of tests/e2e (a module name of its own: tests/filter and
tests/contract have a conftest.py too)."""

from __future__ import annotations

import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
if str(REPO) not in sys.path:
    sys.path.insert(0, str(REPO))

from loadtest import mesh as mesh_mod  # noqa: E402

RESULTS = REPO / "loadtest/results"


def start_mesh(tmp_path_factory, name, **kw):
    """A mesh on ephemeral ports, its work directory under pytest's tmp dir."""
    workdir = tmp_path_factory.mktemp(name)
    m = mesh_mod.Mesh(workdir=workdir, ephemeral=True, log=lambda *a: print(*a), **kw)
    m.start()
    return m
