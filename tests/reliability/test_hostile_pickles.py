"""Hostile bundles in the format NeuralForecast wrote before 3.3 (pickles), against the real
Rust service (black box).

Each case is built here from a good legacy fixture bundle (tests/fixtures/legacy, written by
NeuralForecast 3.2: MLP_0.ckpt, configuration.pkl, alias_to_model.pkl) and is offered twice to
one service:

- AT START, as a bundle of its own next to the good one: the service starts, serves the good
  one, and answers the hostile one's /predict with 422 unsupported_model naming the problem;
- as a NEW VERSION deployed over the good bundle while it serves: refused with the same
  message, the previous version keeps answering with its exact numbers and content hash.

And in every case nothing in the pickle ran: the file a `os.system`/`exec` payload would create
never appears.
"""

from __future__ import annotations

import io
import json
import os
import pickle
import re
import shutil
import struct
import time
import zipfile
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_support import FIXTURES, RELOAD_INTERVAL_MS, Files, contract_hash, deploy, read_bundle, wait_until

LEGACY = FIXTURES / "legacy"
GOOD = "v32_mlp"
CKPT = "MLP_0.ckpt"
REFUSAL_TIMEOUT_S = 4.0
TICK_S = RELOAD_INTERVAL_MS / 1000


# --- building hostile files -------------------------------------------------------

class _Payload:
    """Pickles as `func(*args)`: what a malicious pickle asks the unpickler to call."""

    def __init__(self, func, *args):
        self.func, self.args = func, args

    def __reduce__(self):
        return self.func, self.args


def _zip_entries(ckpt: bytes) -> list[tuple[str, bytes]]:
    with zipfile.ZipFile(io.BytesIO(ckpt)) as z:
        return [(n, z.read(n)) for n in z.namelist()]


def _zip(entries: list[tuple[str, bytes]]) -> bytes:
    out = io.BytesIO()
    with zipfile.ZipFile(out, "w", compression=zipfile.ZIP_STORED) as z:
        for n, b in entries:
            z.writestr(n, b)
    return out.getvalue()


def edit_entry(suffix: str, edit: Callable[[bytes], bytes]) -> Callable[[Files], Files]:
    """Rewrites the checkpoint with the entry ending in `suffix` edited (a well-formed zip)."""
    def corrupt(files: Files) -> Files:
        entries = _zip_entries(files[CKPT])
        hits = [i for i, (n, _) in enumerate(entries) if n.endswith(suffix)]
        assert len(hits) == 1, [n for n, _ in entries]
        n, b = entries[hits[0]]
        entries[hits[0]] = (n, edit(b))
        return {**files, CKPT: _zip(entries)}
    return corrupt


def replace_once(old: bytes, new: bytes) -> Callable[[bytes], bytes]:
    def edit(b: bytes) -> bytes:
        assert b.count(old) >= 1, old
        return b.replace(old, new, 1)
    return edit


def storage_numel(numel: int) -> Callable[[bytes], bytes]:
    """The first storage's persistent id ('storage', FloatStorage, key, 'cpu', numel) declares
    another element count (protocol 2: the FloatStorage global, the key, 'cpu' as a string or a
    memo reference, each maybe memoized, then BININT1/BININT2/BININT and TUPLE)."""
    pat = re.compile(rb"(ctorch\nFloatStorage\n(?:q.)?X\x01\x00\x00\x00\d(?:q.)?"
                     rb"(?:h.|X\x03\x00\x00\x00cpu(?:q.)?))(K.|M..|J....)t", re.S)

    def edit(b: bytes) -> bytes:
        out, n = pat.subn(lambda m: m.group(1) + b"J" + struct.pack("<i", numel) + b"t", b, count=1)
        assert n == 1
        return out
    return edit


def declared_size(suffix: str, size: int) -> Callable[[Files], Files]:
    """The zip's central directory says the entry is `size` bytes (the data stays as it was)."""
    def corrupt(files: Files) -> Files:
        buf = bytearray(files[CKPT])
        name = None
        pos = buf.find(b"PK\x01\x02")
        while pos != -1:
            nlen = struct.unpack_from("<H", buf, pos + 28)[0]
            name = bytes(buf[pos + 46:pos + 46 + nlen])
            if name.endswith(suffix.encode()):
                struct.pack_into("<I", buf, pos + 24, size)
                return {**files, CKPT: bytes(buf)}
            pos = buf.find(b"PK\x01\x02", pos + 4)
        raise AssertionError(f"no central directory entry ends with {suffix}")
    return corrupt


@dataclass
class Hostile:
    id: str
    make: Callable[[Files, Path], Files]
    message: str  # regex over the refusal


def _config_runs(func_args) -> Callable[[Files, Path], Files]:
    return lambda files, marker: {**files, "configuration.pkl": pickle.dumps(
        _Payload(*func_args(marker)), protocol=4)}


CATALOGUE = [
    Hostile("config_pickle_calls_os_system", _config_runs(lambda m: (os.system, f"touch {m}")),
            r"configuration\.pkl cannot be read: it references the Python global '(posix|os)\.system', "
            r"which is not on this service's allowlist \(nothing was executed\)"),
    Hostile("config_pickle_calls_exec",
            _config_runs(lambda m: (exec, f"open({str(m)!r}, 'w').close()")),
            r"configuration\.pkl cannot be read: it references the Python global 'builtins\.exec'"),
    Hostile("alias_map_calls_eval",
            lambda f, m: {**f, "alias_to_model.pkl": pickle.dumps(
                _Payload(eval, f"open({str(m)!r}, 'w').close()"), protocol=2)},
            r"alias_to_model\.pkl cannot be read: it references the Python global '(__builtin__|builtins)\.eval'"),
    # The checkpoint's own pickle: a REDUCE of an unlisted global where torch has OrderedDict().
    Hostile("checkpoint_reduces_unlisted_global",
            lambda f, m: edit_entry("data.pkl", replace_once(b"ccollections\nOrderedDict\n",
                                                             b"csubprocess\nPopen\n"))(f),
            r"MLP_0\.ckpt: data\.pkl it references the Python global 'subprocess\.Popen'"),
    Hostile("truncated_checkpoint", lambda f, m: {**f, CKPT: f[CKPT][:len(f[CKPT]) // 2]},
            r"MLP_0\.ckpt: not a PyTorch zip checkpoint"),
    Hostile("truncated_data_pkl", lambda f, m: edit_entry("data.pkl", lambda b: b[:len(b) // 2])(f),
            r"MLP_0\.ckpt: data\.pkl malformed pickle at byte \d+: truncated"),
    Hostile("storage_shorter_than_its_tensor",
            lambda f, m: edit_entry("/data/0", lambda b: b[:-4])(f),
            r"MLP_0\.ckpt: tensor '[\w.]+': storage '0' holds \d+ bytes, its header declares \d+ elements"),
    Hostile("storage_declares_2_31_elements",
            lambda f, m: edit_entry("data.pkl", storage_numel(2**31 - 1))(f),
            r"MLP_0\.ckpt: tensor '[\w.]+': storage '0' holds \d+ bytes, its header declares 2147483647 elements"),
    Hostile("data_pkl_declares_4_gib", lambda f, m: declared_size("data.pkl", 0xFFFFFFF0)(f),
            r"MLP_0\.ckpt: .*data\.pkl"),
    Hostile("config_not_a_dict", lambda f, m: {**f, "configuration.pkl": pickle.dumps([1, 2])},
            r"configuration\.pkl holds a list, not a dict"),
]


# --- the tests ---------------------------------------------------------------------

@pytest.fixture(scope="module")
def golden() -> dict:
    cases = sorted((LEGACY / "cases").glob(f"{GOOD}__*.json"))
    assert cases, f"no legacy golden case for {GOOD}"
    return json.loads(cases[0].read_text())


@pytest.fixture(scope="module")
def good_files() -> Files:
    files = read_bundle(LEGACY / "bundles" / GOOD)
    assert {CKPT, "configuration.pkl", "alias_to_model.pkl"} <= set(files), files.keys()
    return files


def _close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 + 1e-5 * abs(b)


@pytest.mark.parametrize("case", CATALOGUE, ids=[c.id for c in CATALOGUE])
def test_hostile_legacy_bundle_is_refused_and_runs_nothing(case, tmp_path, start_service, good_files, golden):
    marker = tmp_path / "pwned"
    hostile = case.make(dict(good_files), marker)
    assert hostile != good_files
    root, staging = tmp_path / "models", tmp_path / "staging"
    shutil.copytree(LEGACY / "bundles" / GOOD, root / "m")
    (root / "bad").mkdir()
    deploy(root / "bad", hostile, staging)
    svc = start_service(root)

    # At start: the good bundle serves the writer's numbers, the hostile one is refused by name.
    ok = svc.predict("m", golden["request"])
    assert ok.status_code == 200, ok.text
    got, want = ok.json()["predictions"], golden["expected"]["predictions"]
    assert [(g["unique_id"], g["ds"]) for g in got] == [(w["unique_id"], w["ds"]) for w in want]
    for g, w in zip(got, want):
        assert all(_close(g[k], w[k]) for k in w if k not in ("unique_id", "ds")), (g, w)
    bad = svc.predict("bad", golden["request"])
    assert bad.status_code == 422, bad.text
    err = bad.json()["error"]
    assert err["code"] == "unsupported_model", err
    assert re.search(case.message, err["message"]), f"/{case.message}/ not in: {err['message']}"

    # As a new version over the serving bundle: refused, the previous version keeps serving.
    h0 = svc.models()["m"]["content_hash"]
    assert h0 == contract_hash(good_files)
    deploy(root / "m", hostile, staging)
    wait_until(lambda: svc.refusals("m"), REFUSAL_TIMEOUT_S, lambda: f"the refusal; log:\n{svc.log_tail(6)}")
    time.sleep(2 * TICK_S)
    assert re.search(case.message, svc.refusals("m")[-1]["fields"].get("error", ""))
    assert svc.models()["m"]["content_hash"] == h0
    assert svc.predict("m", golden["request"]).json() == ok.json()
    assert svc.alive()

    assert not marker.exists(), "a pickle payload ran inside the service"
    # The same payload does run under Python's own unpickler: the test is not vacuous.
    if case.id.startswith(("config_pickle_calls", "alias_map_calls")):
        key = "configuration.pkl" if case.id.startswith("config") else "alias_to_model.pkl"
        try:
            pickle.loads(hostile[key])
        except Exception:
            pass
        assert marker.exists(), "the payload should have run under pickle.loads"
        marker.unlink()
