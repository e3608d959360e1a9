"""In-process tests of the Python reference service (FastAPI's TestClient):
no port, no subprocess, except test_service_package.py, which installs the
built wheel. Run: V=$(scripts/python-env.sh); $V/bin/python -m pytest tests/python -q
"""

from __future__ import annotations

import json
import sys
import time
import warnings
from collections.abc import Iterator
from pathlib import Path

import pytest

REPO = Path(__file__).resolve().parents[2]
if str(REPO / "python") not in sys.path:
    sys.path.insert(0, str(REPO / "python"))  # as PYTHONPATH=python: the clone's package, not an installed one

with warnings.catch_warnings():  # starlette's notice that its TestClient will move to httpx2: not ours
    warnings.filterwarnings("ignore", message="Using `httpx` with `starlette.testclient`")
    from fastapi.testclient import TestClient  # noqa: E402

from reference_service.app import State, create_app  # noqa: E402
from reference_service.settings import Settings  # noqa: E402

BUNDLES = REPO / "tests/fixtures/bundles"
CASES = REPO / "tests/fixtures/cases"
EXAMPLE = REPO / "examples/predict-request.json"  # three series for mlp_d_standard
# Two bundles, so a request without ?model= is model_required; mlp_cat has
# categorical columns (dow, sky in df/futr_df, store in static_df).
SERVED = ("mlp_d_standard", "mlp_cat")
# Small limits, so the 413 and too_many_series tests send little.
MAX_BODY_BYTES = 32 * 1024
MAX_SERIES = 3


def case(name: str) -> dict:
    return json.loads((CASES / f"{name}.json").read_text())


def example() -> dict:
    return json.loads(EXAMPLE.read_text())


@pytest.fixture(scope="session")
def models_dir(tmp_path_factory: pytest.TempPathFactory) -> Path:
    root = tmp_path_factory.mktemp("models")
    for name in SERVED:
        (root / name).symlink_to(BUNDLES / name, target_is_directory=True)
    return root


def wait_ready(client: TestClient, state: State, timeout: float = 120) -> None:
    deadline = time.monotonic() + timeout
    while not state.ready:
        assert not state.load_failed, "the bundles failed to load"
        assert time.monotonic() < deadline, f"not ready after {timeout} s"
        time.sleep(0.05)


@pytest.fixture(scope="session")
def service(models_dir: Path) -> Iterator[tuple[TestClient, State]]:
    """One app for the session, bundles loaded: (client, state)."""
    settings = Settings(model_path=str(models_dir), max_body_bytes=MAX_BODY_BYTES, max_series=MAX_SERIES)
    state = State()
    with TestClient(create_app(settings, state)) as client:
        wait_ready(client, state)
        yield client, state


@pytest.fixture
def client(service: tuple[TestClient, State]) -> TestClient:
    return service[0]
