"""Corrupt and hostile bundles against the real Rust service (black box).

A catalogue of broken bundles, each built here from a good fixture bundle
(`mlp_d_standard`: MLP_0.safetensors + configuration.json):

- as a NEW VERSION of a bundle that serves: deployed over it (files written
  aside and renamed in, as a deployment does; some cases written in place,
  non-atomically), the service must refuse it with a message naming the
  problem (ERROR log record naming the bundle, neuro_divergent_reload_failures_total
  up by one and not growing while the files stay the same), keep answering
  with the previous version's exact numbers and content hash, and load the
  good bundle again once it is restored (new mtime);
- AT START, next to a good bundle: the service starts, serves the good one,
  lists the broken one in /models with why, and answers its /predict with
  422 unsupported_model (docs/contract.md) naming the problem;
- REWRITTEN WHILE BEING READ: while a writer keeps rewriting the model file
  between two valid versions, every answer is exactly one version's (never a
  mix of the two), and once the writes stop the service serves what is on disk.
- HOSTILE: a 1 TiB sparse file in a bundle; /predict hammering a refused bundle.

Each of these was first written as a strict xfail against the service as it
was (unclear messages for a truncated file and for a tensor whose
dtype/shape/offsets disagree; an unknown model class swapped in instead of
refused; /models silent about a refused new version; a file rewritten in
place while read served as a mix of two versions; a huge file read whole; a
refused bundle re-read on every request) and now passes: they are the
regression tests of those fixes.

safetensors: u64 LE header length N, N bytes of JSON
{name: {dtype, shape, data_offsets: [begin, end]}, "__metadata__": {str: str}},
then the data; offsets are relative to the data and must tile it exactly.
"""

from __future__ import annotations

import hashlib
import json
import math
import os
import re
import shutil
import struct
import threading
import time
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path

import pytest
from reliability_support import BUNDLES, CASES, RELOAD_INTERVAL_MS, contract_hash, deploy, read_bundle, wait_until

GOOD = "mlp_d_standard"
MODEL_FILE = "MLP_0.safetensors"
CONFIG = "configuration.json"
CASE = "mlp_d_standard__tail"
TICK_S = RELOAD_INTERVAL_MS / 1000
REFUSAL_TIMEOUT_S = 4.0  # 20 reload periods
RELOAD_TIMEOUT_S = 4.0

Files = dict[str, bytes]


# --- safetensors, by hand ------------------------------------------------------

def st_split(buf: bytes) -> tuple[dict, bytes]:
    (n,) = struct.unpack_from("<Q", buf)
    return json.loads(buf[8:8 + n]), buf[8 + n:]


def st_join(header: dict, data: bytes) -> bytes:
    """Header as given (offsets untouched), padded with spaces to 8 bytes as safetensors does."""
    hb = json.dumps(header, separators=(",", ":")).encode()
    hb += b" " * (-len(hb) % 8)
    return struct.pack("<Q", len(hb)) + hb + data


@dataclass
class T:
    name: str
    dtype: str
    shape: list[int]
    raw: bytes


def st_read(buf: bytes) -> tuple[dict | None, list[T]]:
    header, data = st_split(buf)
    meta = header.pop("__metadata__", None)
    items = sorted(header.items(), key=lambda kv: kv[1]["data_offsets"][0])
    return meta, [T(n, i["dtype"], list(i["shape"]), data[i["data_offsets"][0]:i["data_offsets"][1]])
                  for n, i in items]


def st_write(meta: dict | None, tensors: list[T]) -> bytes:
    """A well-formed file: offsets recomputed from the tensors' bytes, in order."""
    header: dict = {} if meta is None else {"__metadata__": meta}
    off = 0
    for t in tensors:
        header[t.name] = {"dtype": t.dtype, "shape": t.shape, "data_offsets": [off, off + len(t.raw)]}
        off += len(t.raw)
    return st_join(header, b"".join(t.raw for t in tensors))


def f32s(raw: bytes) -> list[float]:
    return list(struct.unpack(f"<{len(raw) // 4}f", raw))


def pack_f32(values) -> bytes:
    return struct.pack(f"<{len(values)}f", *values)


def edit_tensors(edit: Callable[[dict | None, list[T]], None]) -> Callable[[Files], Files]:
    """A corruption that rewrites the model file well-formed after `edit(meta, tensors)`."""
    def corrupt(files: Files) -> Files:
        meta, tensors = st_read(files[MODEL_FILE])
        edit(meta, tensors)
        return {**files, MODEL_FILE: st_write(meta, tensors)}
    return corrupt


def edit_header(edit: Callable[[dict], None]) -> Callable[[Files], Files]:
    """A corruption of the raw header (offsets as `edit` leaves them), data unchanged."""
    def corrupt(files: Files) -> Files:
        header, data = st_split(files[MODEL_FILE])
        edit(header)
        return {**files, MODEL_FILE: st_join(header, data)}
    return corrupt


def edit_model_bytes(edit: Callable[[bytes], bytes]) -> Callable[[Files], Files]:
    return lambda files: {**files, MODEL_FILE: edit(files[MODEL_FILE])}


def edit_config(edit: Callable[[dict], None]) -> Callable[[Files], Files]:
    def corrupt(files: Files) -> Files:
        cfg = json.loads(files[CONFIG])
        edit(cfg)
        return {**files, CONFIG: json.dumps(cfg).encode()}
    return corrupt


def tensor(tensors: list[T], name: str) -> T:
    return next(t for t in tensors if t.name == name)


# --- the corruptions -----------------------------------------------------------

def _f16(meta, ts):
    t = tensor(ts, "out.weight")
    t.dtype, t.raw = "F16", struct.pack(f"<{len(t.raw) // 4}e", *f32s(t.raw))


def _transpose_shape(meta, ts):
    tensor(ts, "out.weight").shape = [32, 7]  # same element count, not what h=7, hidden_size=32 need


def _hidden_size(meta, ts):
    meta["hyper_parameters"] = meta["hyper_parameters"].replace('"hidden_size": 32', '"hidden_size": 64')
    assert '"hidden_size": 64' in meta["hyper_parameters"]


def _drop(name):
    return lambda meta, ts: ts.remove(tensor(ts, name))


def _set_value(name, value, index=None):
    def edit(meta, ts):
        t = tensor(ts, name)
        v = f32s(t.raw)
        for i in (range(len(v)) if index is None else [index]):
            v[i] = value
        t.raw = pack_f32(v)
    return edit


def _meta(key, value):
    def edit(meta, ts):
        meta[key] = value
    return edit


def _offsets(name, begin_delta, end_delta):
    def edit(header):
        o = header[name]["data_offsets"]
        header[name]["data_offsets"] = [o[0] + begin_delta, o[1] + end_delta]
    return edit


def _dtype_only(name, dtype):
    def edit(header):
        header[name]["dtype"] = dtype
    return edit


def _shape_only(name, shape):
    def edit(header):
        header[name]["shape"] = shape
    return edit


def _header_not_json(buf: bytes) -> bytes:
    (n,) = struct.unpack_from("<Q", buf)
    junk = b'{"mlp.0.bias": {"dtype": "F32", "shape": [32], "data_offsets": [0, 128'
    return buf[:8] + junk + b" " * (n - len(junk)) + buf[8 + n:]


def _garbage(buf: bytes) -> bytes:
    out, seed = bytearray(), b"neuro-divergent"
    while len(out) < len(buf):
        seed = hashlib.sha256(seed).digest()
        out += seed
    return bytes(out[:len(buf)])


def _cfg_set(key, value):
    def edit(cfg):
        cfg["configuration"][key] = value
    return edit


def _only(*names):
    return lambda files: {k: v for k, v in files.items() if k in names}


def _without(*names):
    return lambda files: {k: v for k, v in files.items() if k not in names}


@dataclass
class Corruption:
    id: str
    corrupt: Callable[[Files], Files]
    # What the refusal must say: a regex over the error message (the file or
    # setting at fault and the fault).
    message: str
    how: str = "rename"  # rename: written aside and renamed in; inplace: rewritten in place
    xfail: str | None = None
    start_xfail: str | None = None


CATALOGUE = [
    # The safetensors container.
    # A truncated file must be called truncated (or its sizes given), not the reverse.
    Corruption("truncated_half", edit_model_bytes(lambda b: b[:len(b) // 2]),
               r"MLP_0\.safetensors: .*(truncated|\d+ bytes)"),
    Corruption("truncated_half_inplace", edit_model_bytes(lambda b: b[:len(b) // 2]),
               r"MLP_0\.safetensors: .*(truncated|\d+ bytes)", how="inplace"),
    Corruption("empty_model_file", edit_model_bytes(lambda b: b""),
               r"MLP_0\.safetensors: truncated: 0 bytes, shorter than the 8-byte safetensors header length"),
    Corruption("header_length_beyond_file",
               edit_model_bytes(lambda b: struct.pack("<Q", len(b) * 4) + b[8:]),
               r"MLP_0\.safetensors: truncated or corrupt: the header length field says \d+ bytes, the file holds \d+"),
    Corruption("header_length_2_63", edit_model_bytes(lambda b: struct.pack("<Q", 1 << 63) + b[8:]),
               r"MLP_0\.safetensors: truncated or corrupt: the header length field says \d+ bytes, the file holds \d+"),
    Corruption("header_not_json", edit_model_bytes(_header_not_json),
               r"MLP_0\.safetensors: invalid safetensors header: invalid JSON in header"),
    Corruption("garbage_bytes", edit_model_bytes(_garbage),
               r"MLP_0\.safetensors: truncated or corrupt: the header length field says \d+ bytes, the file holds \d+"),
    Corruption("offsets_overlap", edit_header(_offsets("mlp.0.weight", -64, 0)),
               r"MLP_0\.safetensors: tensor 'mlp\.0\.weight': dtype F32 x shape \[32, 14\] is 1792 bytes, "
               r"its data_offsets span \d+ bytes"),
    # Which tensor, and what is inconsistent, must be said.
    Corruption("offsets_beyond_data", edit_header(_offsets("out.weight", 0, 4096)),
               r"MLP_0\.safetensors: .*out\.weight"),
    Corruption("shape_overflows_usize", edit_header(_shape_only("out.bias", [1 << 40, 1 << 40])),
               r"MLP_0\.safetensors: tensor 'out\.bias': dtype F32 x shape \[\d+, \d+\] overflows"),
    # Tensors vs what the forward pass needs.
    Corruption("dtype_f16", edit_tensors(_f16), r"MLP_0\.safetensors: tensor 'out\.weight' has dtype F16"),
    Corruption("dtype_i64_size_mismatch", edit_header(_dtype_only("mlp.0.bias", "I64")),
               r"MLP_0\.safetensors: .*mlp\.0\.bias"),
    Corruption("shape_contradicts_hparams", edit_tensors(_transpose_shape),
               r"MLP_0\.safetensors: tensor 'out\.weight' has shape \[32, 7\], the hyperparameters need \[7, 32\]"),
    Corruption("hparams_contradict_shapes", edit_tensors(_hidden_size),
               r"MLP_0\.safetensors: tensor 'mlp\.0\.weight' has shape \[32, 14\], "
               r"the hyperparameters need \[64, 14\]"),
    Corruption("missing_tensor", edit_tensors(_drop("out.bias")), r"MLP_0\.safetensors: tensor 'out\.bias' is missing"),
    Corruption("nan_weight", edit_tensors(_set_value("mlp.1.weight", math.nan, 5)),
               r"MLP_0\.safetensors: tensor 'mlp\.1\.weight' holds a non-finite value at flat index 5"),
    Corruption("nan_weight_inplace", edit_tensors(_set_value("mlp.1.weight", math.nan, 5)),
               r"MLP_0\.safetensors: tensor 'mlp\.1\.weight' holds a non-finite value at flat index 5",
               how="inplace"),
    Corruption("inf_weights", edit_tensors(_set_value("out.bias", math.inf)),
               r"MLP_0\.safetensors: tensor 'out\.bias' holds a non-finite value at flat index 0"),
    Corruption("neg_inf_weight", edit_tensors(_set_value("mlp.0.bias", -math.inf, 31)),
               r"MLP_0\.safetensors: tensor 'mlp\.0\.bias' holds a non-finite value at flat index 31"),
    # Metadata.
    Corruption("unknown_model_class", edit_tensors(_meta("model_class", "TimeLLM")),
               r"TimeLLM.*not supported"),
    Corruption("hparams_not_json", edit_tensors(_meta("hyper_parameters", '{"h": 7, "input_size": ')),
               r"MLP_0\.safetensors: hyper_parameters is not JSON"),
    Corruption("no_model_class", edit_tensors(lambda meta, ts: meta.pop("model_class")),
               r"MLP_0\.safetensors: safetensors metadata has no model_class"),
    # configuration.json.
    Corruption("config_missing", _without(CONFIG), r"configuration\.json is missing"),
    Corruption("config_truncated", lambda f: {**f, CONFIG: f[CONFIG][:len(f[CONFIG]) // 2]},
               r"configuration\.json is not valid JSON"),
    Corruption("config_h_string", edit_config(_cfg_set("h", "twelve")),
               r"configuration\.h must be a positive integer"),
    Corruption("config_h_contradicts_model", edit_config(_cfg_set("h", 14)),
               r"MLP_0\.safetensors: model h 7 differs from the bundle's h 14"),
    Corruption("config_freq_unknown", edit_config(_cfg_set("freq", "fortnightly")),
               r"configuration\.freq: unsupported freq 'fortnightly'"),
    Corruption("config_not_nf_format_2", edit_config(lambda c: c.update(nf_format="1")),
               r"configuration\.json nf_format is \"1\", not \"2\""),
    # The directory.
    Corruption("no_model_file", _only(CONFIG), r"no <alias>_<n>\.safetensors model file"),
    Corruption("empty_directory", _only(), r"configuration\.json is missing"),
]


def catalogue_params(kind: str):
    out = []
    for c in CATALOGUE:
        reason = c.xfail if kind == "reload" else c.start_xfail
        marks = [pytest.mark.xfail(strict=True, reason=reason)] if reason else []
        out.append(pytest.param(c, id=c.id, marks=marks))
    return out


# --- fixtures ----------------------------------------------------------------------

@pytest.fixture(scope="module")
def golden():
    case = json.loads((CASES / f"{CASE}.json").read_text())
    assert case["bundle"] == GOOD
    return case


@pytest.fixture(scope="module")
def good_files() -> Files:
    files = read_bundle(BUNDLES / GOOD)
    assert set(files) == {MODEL_FILE, CONFIG}, files.keys()
    return files


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 + 1e-5 * abs(b)


def assert_golden(body: dict, golden: dict, bundle: str):
    assert body["model"] == bundle
    got, want = body["predictions"], golden["expected"]["predictions"]
    assert len(got) == len(want)
    for g, w in zip(got, want):
        assert (g["unique_id"], g["ds"]) == (w["unique_id"], w["ds"])
        assert close(g["MLP"], w["MLP"]), (g, w)


def refusal_matching(svc, bundle: str, pattern: str) -> list[dict]:
    return [r for r in svc.refusals(bundle) if re.search(pattern, r["fields"].get("error", ""))]


# --- a broken new version is refused; the previous version keeps serving -------------

def test_control_rebuilt_file_is_accepted(tmp_path, start_service, good_files, golden):
    """The hand-written safetensors reader/writer is faithful (it rebuilds the fixture byte for
    byte), and a well-formed new version with other, finite weights loads and serves: the
    refusals below are the corruptions', not the writer's."""
    assert st_write(*st_read(good_files[MODEL_FILE])) == good_files[MODEL_FILE]
    root = tmp_path / "models"
    shutil.copytree(BUNDLES / GOOD, root / "m")
    svc = start_service(root)
    r = svc.predict("m", golden["request"])
    assert r.status_code == 200, r.text
    loads0, f0 = svc.loads("m"), svc.reload_failures("m")
    shifted = edit_tensors(_set_value("out.bias", 0.25))(good_files)
    deploy(root / "m", shifted, tmp_path / "staging")
    wait_until(lambda: svc.models()["m"]["content_hash"] == contract_hash(shifted), RELOAD_TIMEOUT_S,
               "the shifted version to load")
    r2 = svc.predict("m", golden["request"])
    assert r2.status_code == 200 and r2.json() != r.json()
    assert svc.loads("m") == loads0 + 1 and svc.reload_failures("m") == f0


@pytest.mark.parametrize("case", catalogue_params("reload"))
def test_broken_new_version_is_refused_and_previous_keeps_serving(case, tmp_path, start_service, good_files,
                                                                  golden):
    root, staging = tmp_path / "models", tmp_path / "staging"
    live = root / "m"
    shutil.copytree(BUNDLES / GOOD, live)
    svc = start_service(root)
    before = svc.predict("m", golden["request"])
    assert before.status_code == 200, before.text
    assert_golden(before.json(), golden, "m")
    h0 = svc.models()["m"]["content_hash"]
    assert h0 == contract_hash(good_files)
    f0, loads0 = svc.reload_failures("m"), svc.loads("m")

    broken = case.corrupt(dict(good_files))
    assert broken != good_files
    deploy(live, broken, staging, how=case.how)
    wait_until(lambda: svc.refusals("m") or svc.models()["m"]["content_hash"] != h0, REFUSAL_TIMEOUT_S,
               lambda: f"the new version to be refused (or loaded); log:\n{svc.log_tail(6)}")
    time.sleep(2 * TICK_S)  # let in-place writes settle and the reloader see the final files
    assert svc.models()["m"]["content_hash"] == h0, (
        f"the broken version replaced the serving one: /models {svc.models()['m']}, "
        f"/predict {svc.predict('m', golden['request']).text[:300]}")
    last = svc.refusals("m")[-1]  # the final files' refusal (in-place writes may show torn states first)
    assert "previous version keeps serving" in last["fields"]["message"], last
    f1 = svc.reload_failures("m")
    assert f1 > f0, "neuro_divergent_reload_failures_total{bundle=\"m\"} did not count the refusal"

    # The previous version keeps serving: same numbers, same content hash.
    after = svc.predict("m", golden["request"])
    assert after.status_code == 200, after.text
    assert after.json() == before.json()
    assert svc.models()["m"]["content_hash"] == h0
    assert svc.client.get("/ready").status_code == 200
    # An unchanged broken version is not reloaded (nor counted) again on every tick.
    time.sleep(3 * TICK_S)
    assert svc.reload_failures("m") == f1
    assert svc.predict("m", golden["request"]).json() == before.json()

    # Restoring the good bundle (new mtimes) reloads it.
    deploy(live, good_files, staging, force=True)
    wait_until(lambda: svc.loads("m") > loads0, RELOAD_TIMEOUT_S, "the restored bundle to load")
    assert svc.models()["m"]["content_hash"] == h0
    again = svc.predict("m", golden["request"])
    assert again.status_code == 200 and again.json() == before.json()
    assert svc.reload_failures("m") == f1

    # Last, so that every case checks the behaviour above: the refusal names the problem.
    assert re.search(case.message, last["fields"].get("error", "")), (
        f"the refusal does not say /{case.message}/: {last['fields']}")


def test_models_endpoint_reports_a_refused_new_version(tmp_path, start_service, good_files):
    root = tmp_path / "models"
    shutil.copytree(BUNDLES / GOOD, root / "m")
    svc = start_service(root)
    deploy(root / "m", edit_tensors(_set_value("mlp.1.weight", math.nan, 5))(good_files), tmp_path / "staging")
    wait_until(lambda: svc.reload_failures("m") > 0, REFUSAL_TIMEOUT_S, "the refusal")
    entry = svc.models()["m"]
    assert "non-finite" in (entry.get("refused_version") or ""), entry


HUGE = 1 << 40  # 1 TiB, sparse: no disk used, and larger than any RAM a test machine has


def _huge_files_are_safe_to_try() -> str | None:
    """Why a 1 TiB sparse file must not be offered to the service here, or None. The service reads
    every file of a bundle whole: it survives only while the kernel refuses a 1 TiB allocation
    (overcommit heuristic, mode 0, or strict, mode 2); with mode 1 it would fill the memory."""
    try:
        mode = Path("/proc/sys/vm/overcommit_memory").read_text().strip()
        mem = Path("/proc/meminfo").read_text()
    except OSError as e:
        return f"cannot read the overcommit policy: {e}"
    kib = sum(int(m) for m in re.findall(r"^(?:MemTotal|SwapTotal):\s+(\d+) kB", mem, re.M))
    if mode == "1" or kib * 1024 * 4 > HUGE:
        return f"vm.overcommit_memory={mode}, memory+swap {kib // 1024} MiB: a 1 TiB read could succeed"
    return None


def test_huge_file_in_bundle_is_refused_by_name(tmp_path, start_service, good_files, golden):
    unsafe = _huge_files_are_safe_to_try()
    if unsafe:
        pytest.skip(unsafe)
    root = tmp_path / "models"
    live = root / "m"
    shutil.copytree(BUNDLES / GOOD, live)
    svc = start_service(root)
    before = svc.predict("m", golden["request"]).json()
    staged = tmp_path / "staging" / "dataset.safetensors"
    staged.parent.mkdir()
    try:
        with open(staged, "wb") as f:
            f.truncate(HUGE)
    except OSError as e:
        pytest.skip(f"this filesystem cannot hold a 1 TiB sparse file: {e}")
    os.replace(staged, live / "dataset.safetensors")
    try:
        wait_until(lambda: svc.refusals("m"), REFUSAL_TIMEOUT_S, lambda: f"the refusal; log:\n{svc.log_tail(6)}")
        assert svc.alive()
        assert svc.predict("m", golden["request"]).json() == before
        assert svc.models()["m"]["content_hash"] == contract_hash(good_files)
        why = svc.refusals("m")[-1]["fields"]["error"]
    finally:
        (live / "dataset.safetensors").unlink()
    assert re.search(r"dataset\.safetensors.*(too large|bytes)", why), why


# --- broken at start, next to a good bundle --------------------------------------------

@pytest.fixture(scope="module")
def started_with_broken(tmp_path_factory, start_module_service, good_files):
    root = tmp_path_factory.mktemp("start") / "models"
    shutil.copytree(BUNDLES / GOOD, root / "good")
    for c in CATALOGUE:
        if c.how != "rename":
            continue
        d = root / f"bad_{c.id}"
        d.mkdir()
        for name, data in c.corrupt(dict(good_files)).items():
            (d / name).write_bytes(data)
    return start_module_service(root)


def start_params():
    return [p for p in catalogue_params("start") if p.values[0].how == "rename"]


def test_start_with_broken_bundles_serves_the_good_one(started_with_broken, golden):
    svc = started_with_broken
    assert svc.client.get("/ready").status_code == 200
    r = svc.predict("good", golden["request"])
    assert r.status_code == 200, r.text
    assert_golden(r.json(), golden, "good")
    models = svc.models()
    assert models["good"]["supported"] is True
    assert sorted(models) == sorted(["good"] + [f"bad_{c.id}" for c in CATALOGUE if c.how == "rename"])


def test_requests_for_a_refused_bundle_do_not_reload_it(started_with_broken, golden):
    svc = started_with_broken
    name = "bad_nan_weight"
    f0, logged0 = svc.reload_failures(name), len(svc.refusals(name))
    for _ in range(10):
        r = svc.predict(name, golden["request"])
        assert r.status_code == 422 and "non-finite" in r.json()["error"]["message"], r.text
    assert (svc.reload_failures(name), len(svc.refusals(name))) == (f0, logged0)


@pytest.mark.parametrize("case", start_params())
def test_start_broken_bundle_is_reported_and_refused(case, started_with_broken, golden):
    svc = started_with_broken
    name = f"bad_{case.id}"
    entry = svc.models()[name]
    assert entry["supported"] is False, entry
    why = entry.get("error") or entry.get("reason") or ""
    assert re.search(case.message, why), f"/models does not say why {name} is refused: {entry}"
    r = svc.predict(name, golden["request"])
    assert r.status_code == 422, r.text
    err = r.json()["error"]
    assert err["code"] == "unsupported_model", err
    assert re.search(case.message, err["message"]), err
    if "error" in entry:  # not loaded at all: logged as refused at start
        assert refusal_matching(svc, name, case.message), svc.log_tail(8)
    # The good bundle is unaffected.
    assert svc.predict("good", golden["request"]).status_code == 200


# --- a bundle rewritten while it is being read -------------------------------------------

# The rewriter writes in bursts of BURST writes (odd, so each burst leaves the other version
# on disk), each followed by one of these pauses. The service reads a bundle once its files
# have been still for SETTLE (1 s, cache.rs) and polls every RELOAD_INTERVAL_MS (200 ms): the
# short pauses end while a read may be under way, the last one outlasts a whole reload, so
# the race holds at least one reload whatever the timing.
BURST = 3
RACE_PAUSES_S = (1.0, 1.1, 1.2, 2.5)
BIG_HIDDEN = 512  # mlp.1.weight is 512 x 512 f32 = 1 MiB: reading it takes long enough to race


def big_mlp(good: Files, scale: float) -> Files:
    """A valid MLP bundle like mlp_d_standard but with hidden_size 512 (a 1.1 MB model file),
    deterministic weights times `scale`: two scales are two versions with other numbers and
    files of the same size."""
    meta, _ = st_read(good[MODEL_FILE])
    meta = dict(meta)
    meta["hyper_parameters"] = meta["hyper_parameters"].replace('"hidden_size": 32',
                                                                f'"hidden_size": {BIG_HIDDEN}')
    assert f'"hidden_size": {BIG_HIDDEN}' in meta["hyper_parameters"]
    shapes = [("mlp.0.bias", [BIG_HIDDEN]), ("mlp.0.weight", [BIG_HIDDEN, 14]),
              ("mlp.1.bias", [BIG_HIDDEN]), ("mlp.1.weight", [BIG_HIDDEN, BIG_HIDDEN]),
              ("out.bias", [7]), ("out.weight", [7, BIG_HIDDEN])]
    tensors = []
    for k, (name, shape) in enumerate(shapes):
        n = math.prod(shape)
        bound = scale / math.sqrt(shape[-1] if len(shape) == 2 else BIG_HIDDEN)
        vals = [bound * ((((i + 7919 * k) * 2654435761) % 2001) / 1000.0 - 1.0) for i in range(n)]
        tensors.append(T(name, "F32", shape, pack_f32(vals)))
    return {**good, MODEL_FILE: st_write(meta, tensors)}


class Rewriter(threading.Thread):
    """Rewrites the model file of `live` alternately with two versions, BURST writes and then
    one pause of `pauses`, until the pauses are used up or it is stopped: 'rename' (written
    aside, renamed over), 'truncate' (opened with O_TRUNC and rewritten, like cp) or 'inplace'
    (same size, overwritten without truncating, like rsync --inplace or dd conv=notrunc)."""

    def __init__(self, live: Path, versions: list[bytes], staging: Path, how: str,
                 pauses: tuple[float, ...]):
        super().__init__(daemon=True)
        self.live, self.versions, self.staging, self.how = live, versions, staging, how
        self.pauses = pauses
        self.stop_event = threading.Event()
        self.writes = 0
        self.error: BaseException | None = None

    def write(self, path: Path):
        data = self.versions[self.writes % 2]
        if self.how == "inplace":
            with open(path, "r+b", buffering=0) as f:
                f.write(data)
        elif self.how == "rename":
            tmp = self.staging / MODEL_FILE
            tmp.write_bytes(data)
            os.replace(tmp, path)
        else:
            with open(path, "wb") as f:
                f.write(data)
        self.writes += 1

    def run(self):
        path = self.live / MODEL_FILE
        try:
            for pause in self.pauses:
                for _ in range(BURST):
                    self.write(path)
                if self.stop_event.wait(pause):
                    return
        except BaseException as e:  # reported by the test
            self.error = e

    def stop(self):
        self.stop_event.set()
        self.join(timeout=10)
        assert not self.is_alive(), "the rewriter did not stop"
        assert self.error is None, f"the rewriter failed: {self.error!r}"




@pytest.mark.parametrize("how", [
    "rename",
    "truncate",
    "inplace",
])
def test_bundle_rewritten_while_read_never_serves_a_mix(how, tmp_path, start_service, good_files, golden):
    root, staging = tmp_path / "models", tmp_path / "staging"
    live = root / "m"
    v1, v2 = big_mlp(good_files, 1.0), big_mlp(good_files, 0.5)
    assert len(v1[MODEL_FILE]) == len(v2[MODEL_FILE]) > 1 << 20
    live.mkdir(parents=True)
    for name, data in v1.items():
        (live / name).write_bytes(data)
    svc = start_service(root)
    req = golden["request"]
    r1 = svc.predict("m", req)
    assert r1.status_code == 200, r1.text
    deploy(live, v2, staging)
    wait_until(lambda: svc.models()["m"]["content_hash"] == contract_hash(v2), RELOAD_TIMEOUT_S,
               "version 2 to load")
    r2 = svc.predict("m", req)
    assert r2.status_code == 200 and r2.json() != r1.json()
    answers = {contract_hash(v1): r1.json(), contract_hash(v2): r2.json()}
    loads0 = svc.loads("m")

    # v2 is served. BURST * len(RACE_PAUSES_S) writes, an even number, starting with v2 leave
    # v1 on disk: the last, long pause ends in a reload unless one happened before.
    writer = Rewriter(live, [v2[MODEL_FILE], v1[MODEL_FILE]], staging, how, RACE_PAUSES_S)
    writer.start()
    seen = {"answers": 0, "mixed_answers": 0, "other_status": 0, "hashes": 0, "mixed_hashes": 0}
    try:
        while writer.is_alive():
            r = svc.predict("m", req)
            seen["answers"] += 1
            if r.status_code != 200:
                seen["other_status"] += 1
            elif r.json() not in answers.values():
                seen["mixed_answers"] += 1
            seen["hashes"] += 1
            if svc.models()["m"]["content_hash"] not in answers:
                seen["mixed_hashes"] += 1
    finally:
        writer.stop()
    seen.update(writes=writer.writes, reloads=svc.loads("m") - loads0, refusals=svc.reload_failures("m"))
    # Each pause ends a burst that left the other version on disk, and the last pause outlasts
    # a reload: the service swapped versions while the files were being rewritten.
    assert writer.writes == BURST * len(RACE_PAUSES_S), seen
    assert seen["reloads"] >= 1, f"no reload happened during the rewrites: {seen}"
    assert seen["other_status"] == 0, f"requests failed while the bundle was rewritten: {seen}"
    assert seen["mixed_answers"] == 0 and seen["mixed_hashes"] == 0, f"served a mix of two versions: {seen}"

    # Once the writes stop, what is on disk is served (possibly after one more reload).
    on_disk = contract_hash(read_bundle(live))
    assert on_disk in answers
    wait_until(lambda: svc.models()["m"]["content_hash"] == on_disk, RELOAD_TIMEOUT_S,
               lambda: f"the final files ({on_disk}) to be served; /models: {svc.models()['m']['content_hash']}")
    assert svc.predict("m", req).json() == answers[on_disk]
