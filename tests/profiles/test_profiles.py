"""Services with other API shapes, and the profiles that describe them.

Each directory here holds a small FastAPI + NeuralForecast service written the
way teams write theirs (`service.py`) and the API profile that describes it
(`profile.toml`, docs/profiles.md). For each pair, the golden requests of its
bundle (tests/fixtures/cases), written the way that team's clients write
them, go to three services:

- the team's own service (the truth: it calls nf.predict),
- the Rust service started with `--api-profile profile.toml`,
- the Python reference service started with `--api-profile profile.toml`,

and the two answers must be the team's: the same keys in the same order, the
same `ds` text or numbers, the same strings, every forecast within the parity
tolerance. Then the filter, in a real Envoy, sends the team's service the
traffic and mirrors it to the Rust service with the profile's answer shape in
its plugin configuration: it must report a match for every request.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import pandas as pd
import pytest

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
sys.path.insert(0, str(REPO / "tests" / "filter"))
sys.path.insert(0, str(REPO / "python"))
import harness  # noqa: E402

from reference_service import profile as profiles  # noqa: E402

BUNDLES = REPO / "tests" / "fixtures" / "bundles"
CASES = REPO / "tests" / "fixtures" / "cases"
RUST_BIN = Path(os.environ.get("ND_BIN", REPO / "target" / "release" / "neuro-divergent"))
READY_TIMEOUT_S = 180


def close(a: float, b: float) -> bool:
    """The parity tolerance of tests/contract (float32 forecasts, and pandas'
    to_json writing 10 significant digits)."""
    return abs(a - b) <= 1e-4 + 1e-5 * abs(b)


# ------------------------------------------------------------ the teams' clients


def rename(rows: list[dict], names: dict[str, str]) -> list[dict]:
    return [{names.get(k, k): v for k, v in r.items()} for r in rows]


def records_under_key(req: dict, bundle: str) -> tuple[dict, dict, dict]:
    names = {"unique_id": "series", "ds": "timestamp", "y": "value"}
    body = {"model": bundle, "data": rename(req["df"], names)}
    if "futr_df" in req:
        body["future"] = rename(req["futr_df"], names)
    if "static_df" in req:
        body["static"] = rename(req["static_df"], names)
    if "h" in req:
        body["horizon"] = req["h"]
    return body, {}, {}


def bare_list(req: dict, bundle: str) -> tuple[Any, dict, dict]:
    return req["df"], {"x-model": bundle}, {}


def columns_dict(req: dict, bundle: str) -> tuple[dict, dict, dict]:
    body = {"history": pd.DataFrame(req["df"]).to_dict("list")}
    if "futr_df" in req:
        body["future"] = pd.DataFrame(req["futr_df"]).to_dict("list")
    if "static_df" in req:
        body["static"] = pd.DataFrame(req["static_df"]).to_dict("list")
    return body, {}, {"model": bundle}


def split_frames(req: dict, bundle: str) -> tuple[dict, dict, dict]:
    def split(rows):
        df = pd.DataFrame(rows)
        if "ds" in df:
            df["ds"] = pd.to_datetime(df["ds"])
        return json.loads(df.to_json(orient="split"))

    body = {k: split(req[k]) for k in ("df", "futr_df", "static_df") if k in req}
    return body, {}, {}


@dataclass
class Team:
    name: str
    bundle: str
    client: Callable[[dict, str], tuple[Any, dict, dict]]

    @property
    def profile_path(self) -> Path:
        return HERE / self.name / "profile.toml"


TEAMS = [
    Team("records_under_key", "mlp_exog", records_under_key),
    Team("bare_list", "nhits_h_max_linear", bare_list),
    Team("columns_dict", "bitcn_d_exog", columns_dict),
    Team("split_frames", "nbeatsx_ms_stat_mq", split_frames),
]


def golden_requests(team: Team) -> list[tuple[str, dict]]:
    """The bundle's golden requests; an `h` below the bundle's is left out
    (nf.predict refuses it, the services answer its first steps)."""
    out = []
    h = json.loads((BUNDLES / team.bundle / "configuration.json").read_text())["configuration"]["h"]
    for path in sorted(CASES.glob(f"{team.bundle}__*.json")):
        req = json.loads(path.read_text())["request"]
        if "h" in req and req["h"] < h:
            continue
        out.append((path.stem, req))
    assert out, f"no golden case for {team.bundle}"
    return out


# ---------------------------------------------------------------- processes


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_ready(proc: harness.Proc, url: str) -> None:
    deadline = time.monotonic() + READY_TIMEOUT_S
    while time.monotonic() < deadline:
        if not proc.alive():
            pytest.fail(f"{url}: exited before ready:\n{proc.log()[-3000:]}", pytrace=False)
        try:
            if httpx.get(url, timeout=2).status_code == 200:
                return
        except httpx.TransportError:
            pass
        time.sleep(0.2)
    pytest.fail(f"{url}: not ready after {READY_TIMEOUT_S} s:\n{proc.log()[-3000:]}", pytrace=False)


@dataclass
class Running:
    team: Team
    urls: dict[str, str]  # team / rust / python -> base URL
    ports: dict[str, int]


@pytest.fixture(scope="module", params=TEAMS, ids=[t.name for t in TEAMS])
def running(request, tmp_path_factory):
    team: Team = request.param
    if not RUST_BIN.is_file():
        pytest.fail(f"{RUST_BIN} not found: make build (or set ND_BIN)", pytrace=False)
    work = tmp_path_factory.mktemp(team.name)
    models = work / "models"
    shutil.copytree(BUNDLES / team.bundle, models / team.bundle)
    python = sys.executable
    env = dict(os.environ, MODEL_DIR=str(BUNDLES / team.bundle), MODEL_NAME=team.bundle,
               PYTHONPATH=str(REPO / "python"))
    ports = {k: free_port() for k in ("team", "rust", "python")}
    commands = {
        "team": [python, str(HERE / team.name / "service.py"), str(ports["team"])],
        "rust": [str(RUST_BIN), "serve", "--model-path", str(models), "--host", "127.0.0.1",
                 "--port", str(ports["rust"]), "--api-profile", str(team.profile_path)],
        "python": [python, "-m", "reference_service", "--model-path", str(models), "--host", "127.0.0.1",
                   "--port", str(ports["python"]), "--api-profile", str(team.profile_path)],
    }
    procs = {k: harness.Proc(cmd, work / f"{k}.log", env=env, stdin=subprocess.DEVNULL)
             for k, cmd in commands.items()}
    try:
        urls = {k: f"http://127.0.0.1:{p}" for k, p in ports.items()}
        wait_ready(procs["team"], urls["team"] + "/health")
        wait_ready(procs["rust"], urls["rust"] + "/ready")
        wait_ready(procs["python"], urls["python"] + "/ready")
        yield Running(team, urls, ports)
    finally:
        for p in procs.values():
            p.stop()


def post(url: str, team: Team, req: dict) -> httpx.Response:
    body, headers, params = team.client(req, team.bundle)
    return httpx.post(url + "/predict", json=body, headers=headers, params=params, timeout=60)


# ---------------------------------------------------------------- comparison


def differences(want: Any, got: Any, at: str = "") -> list[str]:
    """Where `got` differs from `want`: key sets and order, lengths, strings,
    integers exactly; numbers written with a fraction within `close`."""
    if isinstance(want, dict):
        if not isinstance(got, dict):
            return [f"{at}: want an object, got {type(got).__name__}"]
        if list(want) != list(got):
            return [f"{at}: keys {list(want)} != {list(got)}"]
        return [d for k in want for d in differences(want[k], got[k], f"{at}/{k}")]
    if isinstance(want, list):
        if not isinstance(got, list) or len(want) != len(got):
            return [f"{at}: want {len(want)} items, got {got if not isinstance(got, list) else len(got)}"]
        return [d for i, (w, g) in enumerate(zip(want, got)) for d in differences(w, g, f"{at}/{i}")]
    if isinstance(want, float) or isinstance(got, float):
        ok = isinstance(got, (int, float)) and isinstance(want, (int, float)) and not isinstance(got, bool)
        return [] if ok and close(got, want) else [f"{at}: want {want!r}, got {got!r}"]
    return [] if type(want) is type(got) and want == got else [f"{at}: want {want!r}, got {got!r}"]


@pytest.mark.parametrize("kind", ["rust", "python"])
def test_a_profile_makes_a_service_answer_as_the_team_service(running, kind):
    team = running.team
    cases = golden_requests(team)
    for name, req in cases:
        want = post(running.urls["team"], team, req)
        assert want.status_code == 200, (name, want.text[:500])
        got = post(running.urls[kind], team, req)
        assert got.status_code == 200, (name, got.text[:500])
        diff = differences(want.json(), got.json())
        assert not diff, f"{team.name} {name}: {kind} differs from the team's service:\n" + "\n".join(diff[:10])
    health = httpx.get(running.urls["team"] + "/health").json()
    assert httpx.get(running.urls[kind] + "/health").json() == health


def test_the_example_next_to_the_profile_is_the_teams_call(running):
    """example.json (what `make run API_PROFILE=...` prints as its curl) is a
    golden request as the team's client sends it, and answered alike."""
    team = running.team
    example = json.loads((HERE / team.name / "example.json").read_text())
    assert example["model"] == team.bundle
    calls = [team.client(req, team.bundle) for _, req in golden_requests(team)]
    body, headers, params = next((c for c in calls if c[0] == example["body"]), (None, None, None))
    assert body is not None, "example.json is none of the golden requests as the team's client sends them"
    answers = {k: httpx.post(running.urls[k] + "/predict", json=body, headers=headers, params=params, timeout=60)
               for k in ("team", "rust")}
    assert answers["team"].status_code == answers["rust"].status_code == 200, answers["rust"].text[:500]
    diff = differences(answers["team"].json(), answers["rust"].json())
    assert not diff, "\n".join(diff[:10])


def test_the_profile_checks_offline(running, tmp_path):
    """`neuro-divergent check-profile FILE --sample BODY --model-dir DIR`
    prints the answer the service would give, without a server."""
    team = running.team
    name, req = golden_requests(team)[0]
    body, _, _ = team.client(req, team.bundle)
    sample = tmp_path / "sample.json"
    sample.write_text(json.dumps(body))
    out = subprocess.run([str(RUST_BIN), "check-profile", str(team.profile_path), "--sample", str(sample),
                          "--model-dir", str(BUNDLES / team.bundle)],
                         capture_output=True, text=True, timeout=60)
    assert out.returncode == 0, out.stderr
    want = post(running.urls["team"], team, req).json()
    diff = differences(want, json.loads(out.stdout))
    assert not diff, "\n".join(diff[:10])


def test_the_filter_mirrors_the_team_service_with_no_mismatch(running, tmp_path):
    team = running.team
    profile = profiles.load(str(team.profile_path))
    primary = harness.ExternalBackend("python", running.urls["team"])
    shadow = harness.ExternalBackend("rust", running.urls["rust"])
    cfg = harness.filter_config(primary, shadow, rust_weight_bp=0,
                                shadow={"share_bp": 10000, "max_body_bytes": 1 << 20,
                                        "answer": profile.shadow_answer()})
    envoy = harness.Envoy(harness.bootstrap([primary, shadow], [harness.wasm_filter(cfg)], route_timeout="60s"),
                          tmp_path)
    try:
        sent = 0
        for name, req in golden_requests(team) * 2:
            r = post(envoy.url, team, req)
            assert r.status_code == 200, (name, r.text[:500])
            assert r.headers.get("x-upstream") in (None, "python"), r.headers
            sent += 1

        def results():
            m = envoy.snapshot()
            return {x: m("nd_filter_shadow_results_total", target="rust", result=x)
                    for x in ("match", "mismatch", "error")}

        got = envoy.wait_for(lambda: (r := results()) and sum(r.values()) >= sent and r,
                             timeout=120, what=f"{sent} comparisons")
        mismatches = [line for line in envoy.log().splitlines() if "shadow" in line and "mismatch" in line]
        assert got == {"match": sent, "mismatch": 0, "error": 0}, (got, mismatches[:10], envoy.log()[-2000:])
    finally:
        envoy.stop()


@pytest.mark.parametrize("kind", ["rust", "python"])
def test_a_broken_profile_is_refused_at_start(kind, tmp_path):
    broken = tmp_path / "broken.toml"
    broken.write_text('[request]\ndf = { at = "/data", orient = "rows" }\n')
    models = tmp_path / "models"
    shutil.copytree(BUNDLES / "mlp_d_standard", models / "mlp_d_standard")
    common = ["--model-path", str(models), "--host", "127.0.0.1", "--port", str(free_port()),
              "--api-profile", str(broken)]
    cmd = ([str(RUST_BIN), "serve", *common] if kind == "rust"
           else [sys.executable, "-m", "reference_service", *common])
    out = subprocess.run(cmd, capture_output=True, text=True, timeout=60,
                         env=dict(os.environ, PYTHONPATH=str(REPO / "python")))
    assert out.returncode != 0
    assert str(broken) in out.stderr and "request.df.orient" in out.stderr and "'rows'" in out.stderr, out.stderr


BROKEN = [
    ('[request]\ndf = { orient = "recordz" }', "request.df.orient"),
    ('[request]\ndf = { at = "data" }', "request.df.at"),
    ('[request]\ndf = { orient = "values" }', "needs the column names"),
    ('[request]\nmodel = { query = "m", header = "x" }', "request.model"),
    ('[respons]\nat = ""', "respons"),
    ('[response]\nat = ""', "model_at"),
    ('[response]\nds = "unix"', "response.ds"),
    ("[response]\ndecimals = 16", "response.decimals"),
    ('[columns]\na = "y"\nb = "y"', "two client columns"),
    ("[columns]\na = 3", "columns.a"),
    ('[request]\nfutr_df = { at = "/df" }', "both at"),
]


@pytest.mark.parametrize("text,reason", BROKEN, ids=[r for _, r in BROKEN])
def test_both_services_refuse_the_same_broken_profiles(text, reason, tmp_path):
    path = tmp_path / "p.toml"
    path.write_text(text)
    with pytest.raises(profiles.ProfileError) as e:
        profiles.load(str(path))
    assert reason in str(e.value) and str(path) in str(e.value)
    out = subprocess.run([str(RUST_BIN), "check-profile", str(path)], capture_output=True, text=True, timeout=30)
    assert out.returncode != 0 and reason in out.stderr and str(path) in out.stderr, out.stderr
