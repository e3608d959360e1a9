#!/usr/bin/env python
"""Golden fixtures of legacy NeuralForecast bundles (pre-3.3 pickle "v1" format).

Usage (from the repo root):
    V=$(scripts/python-env.sh)
    $V/bin/python python/make_legacy_fixtures.py [--out tests/fixtures/legacy] [--versions 3.2.2,1.7.7]

For each release pinned in python/legacy-writers.lock (one per family) it
fetches the wheel with ``pip download --no-deps --require-hashes`` into
``${ND_CACHE_DIR:-~/.cache/neuro-divergent}/nf-wheels/`` (skipped when a wheel
with the pinned sha256 is already there), unpacks it next to the wheel and
runs python/legacy_writer.py in this same venv with that directory as
PYTHONPATH, so the OLD release trains, saves
(``nf.save(dir, overwrite=True, save_dataset=False)``), reloads and predicts
with its own code. Then, in this process (the venv's NeuralForecast 3.3.0), it
records what 3.3.0 does with every bundle and the same requests, lists the
pickle globals each file references, and writes ``manifest.json`` and
``README.md``. Deterministic: seeded, CPU, one torch thread.

``--only SUFFIX[,SUFFIX]`` writes only those bundle specs (e.g.
``mlp_conformal_dist``) for the selected versions and keeps every other
bundle, case and manifest entry as it is (the version summaries are extended).
Specs that ask for another pandas (legacy_writer's ``pandas`` key) are written
in a second pass of the versions in PINNED_PANDAS, with those pinned wheels
first on PYTHONPATH after the release.

``--cs-df-pickles`` (alone) writes ``pandas/``: the same small conformity-score
DataFrame pickled by each pandas in CS_DF_PANDAS (pinned wheels) and by the
venv's, in each block layout, with the float columns each holds (JSON), for
the Rust reader's unit tests.
"""

from __future__ import annotations

import argparse
import contextlib
import hashlib
import io
import json
import logging
import os
import pickletools
import shutil
import subprocess
import sys
import tempfile
import time
import warnings
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

import neuralforecast  # noqa: E402
import torch  # noqa: E402
from make_fixtures import predictions_to_records, records_to_df  # noqa: E402
from neuralforecast import NeuralForecast  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
for _name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)

ROOT = os.path.dirname(HERE)
LOCK = os.path.join(HERE, "legacy-writers.lock")
WRITER = os.path.join(HERE, "legacy_writer.py")
ATOL, RTOL = 1e-4, 1e-5

_PANDAS_223 = "pandas==2.2.3 --hash=sha256:c124333816c3a9b03fbeef3a9f230ba9a737e9e5bb4060aa2107a86cc0a497fc"
_PYTZ = "pytz==2024.2 --hash=sha256:31c7c1817eb7fae7ca4b8c7ee50c72f93aa2dd863de768e1ef4245d426aa0725"
_NUMPY_1 = "numpy==1.26.4 --hash=sha256:666dbfb6ec68962c033a450943ded891bed2d54e6755e35e5835d63f4f6931d5"

# Versions whose writer also runs with a pinned pandas (cp311 manylinux
# wheels, as the venv's Python), for the specs that ask for it: a bundle whose
# configuration.pkl pandas 2.x pickled (numpy, torch and the rest stay the
# venv's: pandas 2.2 runs on numpy 2).
PINNED_PANDAS = {
    "3.0.2": [_PANDAS_223, _PYTZ],
}

# --cs-df-pickles: pandas releases (and what they need besides the venv)
# that pickle the conformity-score frame; pandas 1.x and 2.0 were built
# against numpy 1.
CS_DF_PANDAS = {
    "1.5.3": ["pandas==1.5.3 --hash=sha256:5f2b952406a1588ad4cad5b3f55f520e82e902388a6d5a4a91baa8d38d23c7f6",
              _NUMPY_1, _PYTZ],
    "2.0.3": ["pandas==2.0.3 --hash=sha256:d9cd88488cceb7635aebb84809d087468eb33551097d600c6dad13602029c2df",
              _NUMPY_1, _PYTZ],
    "2.2.3": [_PANDAS_223, _PYTZ],
}


def cache_dir():
    base = os.environ.get("ND_CACHE_DIR") or os.path.join(os.path.expanduser("~"), ".cache", "neuro-divergent")
    return os.path.join(base, "nf-wheels")


def read_lock(path):
    pins = []
    for line in open(path):
        line = line.split("#", 1)[0].strip()
        if not line:
            continue
        req, _, h = line.partition(" --hash=sha256:")
        name, _, ver = req.partition("==")
        pins.append((name.strip(), ver.strip(), h.strip(), line))
    return pins


def sha256(path):
    d = hashlib.sha256()
    with open(path, "rb") as f:
        for chunk in iter(lambda: f.read(1 << 20), b""):
            d.update(chunk)
    return d.hexdigest()


def pip_download(line, dest):
    """pip download of one hash-pinned requirement line into dest."""
    with tempfile.TemporaryDirectory() as t:
        req = os.path.join(t, "req.txt")
        with open(req, "w") as f:
            f.write(line + "\n")
        subprocess.run([sys.executable, "-m", "pip", "download", "--quiet", "--no-deps", "--require-hashes",
                        "--only-binary=:all:", "-r", req, "-d", dest], check=True)


def ensure_wheel(name, ver, digest, line):
    """Returns the unpacked wheel directory (downloaded and hash-checked once)."""
    cdir = cache_dir()
    os.makedirs(cdir, exist_ok=True)
    whl = os.path.join(cdir, f"{name}-{ver}-py3-none-any.whl")
    if not (os.path.isfile(whl) and sha256(whl) == digest):
        pip_download(line, cdir)
    if sha256(whl) != digest:
        raise SystemExit(f"{whl}: sha256 does not match python/legacy-writers.lock")
    unpacked = os.path.join(cdir, f"{name}-{ver}")
    marker = os.path.join(unpacked, ".sha256")
    if not (os.path.isfile(marker) and open(marker).read().strip() == digest):
        shutil.rmtree(unpacked, ignore_errors=True)
        with zipfile.ZipFile(whl) as z:
            z.extractall(unpacked)
        with open(marker, "w") as f:
            f.write(digest + "\n")
    return unpacked


def ensure_pinned(line):
    """A wheel pinned by `name==version --hash=sha256:...` (any platform tag),
    downloaded once into <cache>/pinned and unpacked there; returns the
    unpacked directory."""
    req, _, digest = line.partition(" --hash=sha256:")
    name, _, ver = req.strip().partition("==")
    digest = digest.strip()
    cdir = os.path.join(cache_dir(), "pinned")
    os.makedirs(cdir, exist_ok=True)

    def find():
        for fn in sorted(os.listdir(cdir)):
            if fn.endswith(".whl") and fn.lower().startswith(f"{name.lower()}-{ver}-") and \
                    sha256(os.path.join(cdir, fn)) == digest:
                return fn
        return None

    whl = find()
    if whl is None:
        pip_download(line, cdir)
        whl = find()
        if whl is None:
            raise SystemExit(f"{line}: no downloaded wheel matches the pinned sha256")
    unpacked = os.path.join(cdir, whl[: -len(".whl")])
    marker = os.path.join(unpacked, ".sha256")
    if not (os.path.isfile(marker) and open(marker).read().strip() == digest):
        shutil.rmtree(unpacked, ignore_errors=True)
        with zipfile.ZipFile(os.path.join(cdir, whl)) as z:
            z.extractall(unpacked)
        with open(marker, "w") as f:
            f.write(digest + "\n")
    return unpacked


def prefix_of(ver):
    major, minor = ver.split(".")[:2]
    return f"v{major}{minor}", f"{major}.{minor}"


# --------------------------------------------------------------------------
# Pickle globals (no unpickling: opcode scan)
# --------------------------------------------------------------------------

_STRING_OPS = {"SHORT_BINUNICODE", "BINUNICODE", "BINUNICODE8", "UNICODE", "SHORT_BINSTRING", "BINSTRING",
               "STRING"}


def pickle_globals(data):
    """Distinct module.name pairs of GLOBAL / STACK_GLOBAL opcodes."""
    out, pushed, memo = set(), [], {}
    for op, arg, _pos in pickletools.genops(data):
        n = op.name
        if n == "GLOBAL":
            mod, name = arg.split(" ", 1)
            out.add(f"{mod}.{name}")
            pushed.append(None)
        elif n == "STACK_GLOBAL":
            mod, name = (pushed[-2], pushed[-1]) if len(pushed) >= 2 else (None, None)
            out.add(f"{mod}.{name}")
            pushed.append(None)
        elif n in _STRING_OPS:
            pushed.append(arg)
        elif n == "MEMOIZE":
            memo[len(memo)] = pushed[-1] if pushed else None
        elif n in ("PUT", "BINPUT", "LONG_BINPUT"):
            memo[int(arg)] = pushed[-1] if pushed else None
        elif n in ("GET", "BINGET", "LONG_BINGET"):
            pushed.append(memo.get(int(arg)))
        else:
            pushed.append(None)
    return sorted(out)


def bundle_globals(bdir):
    res = {}
    for fn in sorted(os.listdir(bdir)):
        p = os.path.join(bdir, fn)
        if fn.endswith(".ckpt"):
            with zipfile.ZipFile(p) as z:
                pk = [n for n in z.namelist() if n.endswith("/data.pkl")]
                res[fn] = pickle_globals(z.read(pk[0]))
        elif fn.endswith(".pkl"):
            res[fn] = pickle_globals(open(p, "rb").read())
    return res


def file_kind(fn):
    return "ckpt (archive/data.pkl)" if fn.endswith(".ckpt") else fn


# --------------------------------------------------------------------------
# What NeuralForecast 3.3.0 (this venv) does with a legacy bundle
# --------------------------------------------------------------------------

def _err_text(e, bdir, limit=500):
    """One line: the exception, bundle paths shown as <bundle>, pickle advice cut."""
    s = " ".join(line.strip() for line in str(e).strip().splitlines())
    s = s.replace(bdir, "<bundle>").replace(os.path.basename(bdir), "<bundle>")
    for cut in (" Convert it from", " Convert the directory"):
        if cut in s:
            s = s[: s.index(cut)]
    s = f"{type(e).__name__}: {s}"
    return s if len(s) <= limit else s[: limit - 3] + "..."


def compare(expected, got):
    key = lambda r: (str(r["unique_id"]), str(r["ds"]))  # noqa: E731
    e = {key(r): r for r in expected}
    g = {key(r): r for r in got}
    if set(e) != set(g):
        return None, f"rows differ ({len(e)} expected, {len(g)} got)"
    cols_e = [c for c in expected[0] if c not in ("unique_id", "ds")]
    cols_g = [c for c in got[0] if c not in ("unique_id", "ds")]
    if sorted(cols_e) != sorted(cols_g):
        return None, f"columns differ (expected {cols_e}, got {cols_g})"
    worst, ok = 0.0, True
    for k, r in e.items():
        for c in cols_e:
            d = abs(r[c] - g[k][c])
            worst = max(worst, d)
            if d > ATOL + RTOL * abs(r[c]):
                ok = False
    return worst, ("same" if ok else f"differs (max abs diff {worst:.6g})")


def nf33_check(bdir, case_files, freq):
    res = {"nf_version": neuralforecast.__version__}
    sink = io.StringIO()
    with contextlib.redirect_stdout(sink), contextlib.redirect_stderr(sink):
        try:
            nf = NeuralForecast.load(bdir)
            res["allow_pickle_required"] = False
        except Exception as e:  # noqa: BLE001
            res["restricted_load_error"] = _err_text(e, bdir)
            try:
                nf = NeuralForecast.load(bdir, allow_pickle=True)
                res["allow_pickle_required"] = True
            except Exception as e2:  # noqa: BLE001
                res["allow_pickle_required"] = None
                res["result"] = f"cannot load: {_err_text(e2, bdir)}"
                return res
        per_case, worst, verdicts = {}, 0.0, []
        for cf in case_files:
            case = json.load(open(cf))
            req = case["request"]
            kw = dict(df=records_to_df(req["df"], freq))
            if "futr_df" in req:
                kw["futr_df"] = records_to_df(req["futr_df"], freq)
            if "static_df" in req:
                kw["static_df"] = records_to_df(req["static_df"], freq)
            for k in ("level", "quantiles"):
                if k in req:
                    kw[k] = req[k]
            name = os.path.basename(cf)[:-5]
            try:
                fc = nf.predict(**kw)
            except Exception as e:  # noqa: BLE001
                per_case[name] = f"predict fails: {_err_text(e, bdir)}"
                verdicts.append("fail")
                continue
            d, verdict = compare(case["expected"]["predictions"], predictions_to_records(fc))
            per_case[name] = verdict
            if d is None:
                verdicts.append("fail")
            else:
                worst = max(worst, d)
                verdicts.append("same" if verdict == "same" else "differs")
    res["cases"] = per_case
    if "fail" in verdicts:
        res["result"] = "; ".join(f"{k}: {v}" for k, v in per_case.items() if v != "same" and not
                                  v.startswith("differs")) or "fails"
        res["result"] = "cannot predict: " + res["result"]
    elif "differs" in verdicts:
        res["result"] = f"differs (max abs diff {worst:.6g})"
    else:
        res["result"] = "same"
    res["max_abs_diff"] = worst
    return res


# --------------------------------------------------------------------------
# Manifest / README
# --------------------------------------------------------------------------

def bundle_entry(bname, ver, fam, rec, bdir, out):
    files = rec["files"]
    ckpts = {}
    for fn, c in files["checkpoints"].items():
        ckpts[fn] = {
            "keys": c["keys"],
            "versions_recorded": c["versions_recorded"] or None,
            "zip_meta": c["zip_meta"],
            "zip_entries_non_data": c["zip_entries_non_data"],
            "hyper_parameters_type": c["hyper_parameters_type"],
            "hyper_parameters_keys": c["hyper_parameters_keys"],
            "loss": c["loss"],
            "valid_loss": c["valid_loss"],
        }
    case_files = [os.path.join(out, "cases", c + ".json") for c in rec["cases"]]
    entry = {
        "writer_version": ver,
        "family": fam,
        "variant": rec.get("variant"),
        "classes": [m["class"] for m in rec["models"]],
        "freq": rec["freq"],
        "h": rec["h"],
        "local_scaler_type": rec["local_scaler_type"],
        "models": rec["models"],
        "dropped_kwargs": rec["dropped_kwargs"] or None,
        "files": files["files"],
        "alias_to_model": files.get("alias_to_model"),
        "configuration_keys": files.get("configuration_keys"),  # in file order; moved to versions
        "configuration": files.get("configuration"),
        "checkpoints": ckpts,
        "pickle_globals": bundle_globals(bdir),
        "cases": rec["cases"],
    }
    # fitted with prediction_intervals: the settings and what pickled the scores
    for k in ("prediction_intervals", "conformity_scores"):
        if rec.get(k) is not None:
            entry[k] = rec[k]
    entry["nf33"] = nf33_check(bdir, case_files, rec["freq"])
    return entry


def version_summary(ver, meta, bundles):
    mine = {k: b for k, b in bundles.items() if b.get("writer_version") == ver and "skipped" not in b}
    globs, ckpt_keys, hp_types, config_keys, zip_entries, zip_meta = {}, set(), set(), set(), set(), set()
    common = None
    for b in mine.values():
        for fn, g in b["pickle_globals"].items():
            globs.setdefault(file_kind(fn), set()).update(g)
        for c in b["checkpoints"].values():
            ckpt_keys.update(c["keys"])
            hp_types.add(c["hyper_parameters_type"])
            zip_entries.update(c["zip_entries_non_data"])
            zip_meta.add(json.dumps(c["zip_meta"], sort_keys=True))
            ks = set(c["hyper_parameters_keys"])
            common = ks if common is None else common & ks
        config_keys.add(tuple(b["configuration_keys"] or ()))
    skipped = {k: b["skipped"] for k, b in bundles.items() if b.get("writer_version") == ver and "skipped" in b}
    gen_classes = sorted({c for b in mine.values() for c in b["classes"]})
    return {
        "family": prefix_of(ver)[1],
        "wheel_sha256": meta.get("wheel_sha256"),
        "writer_runtime": meta["runtime"],
        "writer_load_kwargs": meta["writer_load_kwargs"],
        "served_classes_present": meta["served_classes_present"],
        "served_classes_absent": meta["served_classes_absent"],
        "served_classes_generated": gen_classes,
        "skipped": skipped,
        "bundle_count": len(mine),
        "checkpoint_keys": sorted(ckpt_keys),
        "checkpoint_zip_entries_non_data": sorted(zip_entries),
        "checkpoint_zip_meta": [json.loads(z) for z in sorted(zip_meta)],
        "hyper_parameters_types": sorted(hp_types),
        "hyper_parameters_common_keys": sorted(common or ()),
        "configuration_keys_in_file_order": [list(k) for k in sorted(config_keys)],
        "pickle_globals": {k: sorted(v) for k, v in sorted(globs.items())},
    }


def merge_summary(old, ver, bundles):
    """A version summary extended by bundles written with --only (the
    hyper_parameters common keys of the full run are kept)."""
    v = dict(old)
    mine = {k: b for k, b in bundles.items() if b.get("writer_version") == ver and "skipped" not in b}
    v["bundle_count"] = len(mine)
    v["skipped"] = {k: b["skipped"] for k, b in bundles.items() if b.get("writer_version") == ver
                    and "skipped" in b}
    v["served_classes_generated"] = sorted({c for b in mine.values() for c in b["classes"]})
    globs = {k: set(g) for k, g in old["pickle_globals"].items()}
    cfg = {tuple(k) for k in old["configuration_keys_in_file_order"]}
    ckpt_keys, hp_types = set(old["checkpoint_keys"]), set(old["hyper_parameters_types"])
    for b in mine.values():
        if "configuration_keys" not in b:
            continue  # an entry of the full run, already summarised
        for fn, g in b["pickle_globals"].items():
            globs.setdefault(file_kind(fn), set()).update(g)
        cfg.add(tuple(b["configuration_keys"] or ()))
        for c in b["checkpoints"].values():
            ckpt_keys.update(c["keys"])
            hp_types.add(c["hyper_parameters_type"])
    v["checkpoint_keys"] = sorted(ckpt_keys)
    v["hyper_parameters_types"] = sorted(hp_types)
    v["configuration_keys_in_file_order"] = [list(k) for k in sorted(cfg)]
    v["pickle_globals"] = {k: sorted(g) for k, g in sorted(globs.items())}
    return v


def fmt_opts(b):
    def one(m):
        s = m["class"] + (f" alias={m['alias']}" if m.get("alias") else "")
        return s
    classes = " + ".join(one(m) for m in b["models"])
    scal = ", ".join(str(m["scaler_type"]) for m in b["models"])
    loss = ", ".join(str(m["loss"]) for m in b["models"])
    pi = b.get("prediction_intervals")
    if pi:
        loss += f"; PredictionIntervals({pi['method']}, n_windows={pi['n_windows']})"
    ex = []
    m0 = b["models"][0]
    for kind in ("futr", "hist", "stat"):
        if m0[f"{kind}_exog_list"]:
            ex.append(f"{kind}: {', '.join(m0[kind + '_exog_list'])}")
    return classes, scal, loss, "; ".join(ex) or "-"


README_HEAD = """# Legacy NeuralForecast bundles (pickle "v1" format, written by 1.7-3.2)

Generated by `python/make_legacy_fixtures.py`; do not edit by hand.

    V=$(scripts/python-env.sh)
    $V/bin/python python/make_legacy_fixtures.py --out tests/fixtures/legacy

Each release pinned (with its wheel's sha256) in `python/legacy-writers.lock`
is downloaded with `pip download --no-deps --require-hashes` into
`${ND_CACHE_DIR:-~/.cache/neuro-divergent}/nf-wheels/`, unpacked there, and
put first on `PYTHONPATH` of the project venv (torch, lightning, pandas and
numpy stay the venv's). `python/legacy_writer.py` then trains, under that old
release, one tiny seeded bundle per served model class the release has
(h=6, input_size=12 (StemGNN 4), tiny widths, 20 steps, CPU, one thread, `scaler_type`
standard, 3 series; the multivariate classes use `n_series=3`) plus a few
option variants, and writes:

- `bundles/<bundle>/`: exactly what that release's
  `nf.save(dir, overwrite=True, save_dataset=False)` wrote:
  `<alias>_<n>.ckpt` (torch zip, `{"hyper_parameters", "state_dict"}`),
  `configuration.pkl`, `alias_to_model.pkl`. Bundle names are
  `v<major><minor>_<model>[_<variant>]`.
- `cases/<bundle>__<case>.json`: same format as `tests/fixtures/cases`
  (`{"bundle", "request", "expected"}`), where `expected.predictions` is that
  release's `NeuralForecast.load(bundle).predict(...)` on the reloaded bundle
  (1.7.x is loaded with `weights_only=False`: it passes load kwargs straight to
  `torch.load`, whose default flipped in torch 2.6).
- `manifest.json`: per bundle the writer version and family, classes, options,
  constructor kwargs the release did not accept (dropped), checkpoint keys,
  `hyper_parameters` type and its keys beyond the release's common set,
  `configuration.pkl` keys and values, the pickle globals of every file, and `nf33`: what NeuralForecast 3.3.0 (the
  venv's) does with the same bundle and requests: `NeuralForecast.load(dir)`
  (restricted), else `allow_pickle=True`; `same` means every value within
  1e-4 + 1e-5*|x| of the writer's. `versions` summarises each release.

Up to 3.0.x, `predict(df=...)` applies the local scalers fitted on the
*training* series (stored in `configuration.pkl`) to the request's series by
position, so the cases of bundles with a `local_scaler_type` always hold three
series; 3.1+ and 3.3 refit them on the request.

Where NF 3.3.0 is not `same` (see the table), the causes found are:
- restricted load refused: checkpoints up to 3.0.x pickle `hyper_parameters`
  as `lightning_fabric.utilities.data.AttributeDict` (a plain `dict` since
  3.1); any `configuration.pkl` holding fitted local scalers needs
  `numpy._core.multiarray._reconstruct`, one holding conformity scores
  `pandas.DataFrame` (and pandas' and pyarrow's reconstructors). All need
  `allow_pickle=True`.
- 1.7/2.0 RNN, LSTM, GRU, DilatedRNN, TCN: the `BaseRecurrent` architecture
  (`context_adapter` Linear(hidden + futr*h -> context_size*h), decoder input
  `context_size + futr`) was replaced in 3.0; the weights do not fit.
- up to 3.0 with `decoder_layers=1` (`*_lstm_dec1`): `common/_modules.MLP`
  built Linear-act-Linear for `num_layers=1`; since 3.1 it is one Linear.
  The same weights load into 3.3 as `decoder_layers=2`.
- 1.7/2.0 TSMixer/TSMixerx: `norm.weight`/`norm.bias` (own
  `ReversibleInstanceNorm1d`; TSMixerx shape [1, 1, 1, n_series]) became
  `RevINMultivariate`'s `norm.affine_weight`/`norm.affine_bias` [1, 1, n_series];
  1.7/2.0 RMoK: `rev.affine_*` of shape [n_series] became [1, 1, n_series].
  Renamed/reshaped, they give the writer's predictions.
- `*_tide_standard`, `*_mlp_static` up to 3.0: the scaler semantics above; only
  cases with a series shorter than `input_size` differ (the zero left-padding
  is applied in the locally scaled space, so which statistics were used shows).
- 1.7/2.0 `*_mlp_conformal_err`: 1.x and 2.x computed `conformal_error`
  intervals as the forecast -/+ the `level/100` quantile of the conformity
  scores; 3.0 and later take the `0.5 + level/200` quantile (the Rust service
  serves these bundles' point forecasts and refuses their intervals).

Prediction intervals (`*_mlp_conformal_*`): fitted with
`fit(prediction_intervals=PredictionIntervals(n_windows=3, method=...))`, so
`configuration.pkl` holds `prediction_intervals` and the conformity scores
`_cs_df` as a pickled pandas DataFrame; their cases send `level` (and, from
3.0, which added it, `quantiles`) as `predict` takes them, always with three
series (the scores are paired with the request's series by position).
`manifest.json` records per bundle the settings and what the pickled frame is
(pandas version, dtypes, index). `v30_mlp_conformal_pandas2` is written by
3.0.2 with pandas 2.2.3 first on `PYTHONPATH` (pinned with its sha256 in
`PINNED_PANDAS` of the generator; object-dtype columns and index), the others
with the venv's pandas (3.x: pyarrow-backed string columns and index).
`--only SUFFIX[,...]` (re)writes only those specs and extends the manifest.

`pandas/` (`make_legacy_fixtures.py --cs-df-pickles`) holds the same small
conformity-score frame pickled by pandas 1.5.3, 2.0.3, 2.2.3 (pinned wheels,
with numpy 1.26.4 for the first two) and the venv's pandas, in each block
layout (`split`: a block per column; `consolidated`: one float64 block placed
by an index array; `fortran`: a Fortran-ordered block; protocols 4 and 5; and
`getstate`, the `NEWOBJ` + `BUILD` layout pandas before 1.3 wrote), each with
a `.json` of what pandas says its float columns hold, for the Rust reader's
unit tests.
"""


def dump_json(obj, ind=0):
    """Indented JSON with lists of scalars (and small flat dicts) on one line."""
    pad, pad1 = " " * ind, " " * (ind + 1)
    flat = lambda v: not isinstance(v, (dict, list))  # noqa: E731
    if isinstance(obj, list) and all(flat(v) for v in obj):
        return json.dumps(obj)
    if isinstance(obj, dict) and all(flat(v) for v in obj.values()) and len(json.dumps(obj)) < 100:
        return json.dumps(obj)
    if isinstance(obj, list):
        return "[\n" + ",\n".join(pad1 + dump_json(v, ind + 1) for v in obj) + "\n" + pad + "]"
    if isinstance(obj, dict):
        if not obj:
            return "{}"
        return ("{\n" + ",\n".join(f"{pad1}{json.dumps(str(k))}: {dump_json(v, ind + 1)}" for k, v in obj.items())
                + "\n" + pad + "}")
    return json.dumps(obj)


def write_readme(out, manifest):
    lines = [README_HEAD]
    n = sum("skipped" not in b for b in manifest["bundles"].values())
    lines.append(f"Bundles: {n} (a full run takes about two minutes on two cores).\n")
    lines.append("| version | generated | skipped |")
    lines.append("|---|---|---|")
    for ver, v in manifest["versions"].items():
        sk = "; ".join(f"`{k}`: {r}" for k, r in v["skipped"].items()) or "-"
        lines.append(f"| {ver} | {v['bundle_count']} | {sk} |")
    lines.append("")
    lines.append("| bundle | writer | models | freq | scaler_type | local_scaler_type | loss | exog | NF 3.3.0 |")
    lines.append("|---|---|---|---|---|---|---|---|---|")
    for name, b in manifest["bundles"].items():
        if "skipped" in b:
            continue
        classes, scal, loss, ex = fmt_opts(b)
        n = b["nf33"]
        r = n["result"] if len(n["result"]) < 90 else n["result"][:87] + "..."
        r = r.replace("|", "/") + (" (allow_pickle)" if n.get("allow_pickle_required") else "")
        lines.append(f"| `{name}` | {b['writer_version']} | {classes} | {b['freq']} | {scal} | "
                     f"{b['local_scaler_type'] or '-'} | {loss} | {ex} | {r} |")
    with open(os.path.join(out, "README.md"), "w") as f:
        f.write("\n".join(lines) + "\n")


# --------------------------------------------------------------------------
# --cs-df-pickles: the conformity-score frame as each pandas pickles it
# --------------------------------------------------------------------------

# Run under one pandas (argv: output directory, file prefix). The frame is
# shaped as NeuralForecast's `_cs_df` (unique_id, ds, cutoff and one float
# column per model, rows by series, window, step), with score columns placed
# apart so that block placements are not trivial.
_CS_DF_SCRIPT = r"""
import copyreg, json, os, pickle, sys
import numpy as np
import pandas as pd
from pandas.core.internals.managers import BlockManager

out, tag = sys.argv[1], sys.argv[2]
n_series, n_windows, h = 2, 3, 2
rows = []
for u in ("s1", "s2"):
    for w in range(n_windows):
        cutoff = pd.Timestamp("2024-01-10") + pd.Timedelta(days=w)
        for t in range(h):
            rows.append((u, cutoff + pd.Timedelta(days=t + 1), cutoff))
n = len(rows)
rng = np.random.default_rng(7)
cols = {
    "MLP": np.abs(rng.normal(0.0, 10.0, n)),
    "NHITS1": np.abs(rng.normal(0.0, 3.0, n)),
    "NLinear": np.abs(rng.normal(0.0, 1.0, n)),
    "TFT": np.abs(rng.normal(0.0, 5.0, n)).astype(np.float32),
}
ids = [r[0] for r in rows]
ds = pd.to_datetime([r[1] for r in rows])
cutoff = pd.to_datetime([r[2] for r in rows])


def split():
    # one block per column: columns assigned one by one
    df = pd.DataFrame({"unique_id": ids})
    df["NLinear"] = cols["NLinear"]
    df["ds"] = ds
    df["cutoff"] = cutoff
    for c in ("MLP", "NHITS1", "TFT"):
        df[c] = cols[c]
    return df


def consolidated():
    # built at once: one float64 block for MLP, NLinear, NHITS1 (placement
    # an index array), one float32 block for TFT
    return pd.DataFrame({"unique_id": ids, "MLP": cols["MLP"], "ds": ds, "NLinear": cols["NLinear"],
                         "cutoff": cutoff, "NHITS1": cols["NHITS1"], "TFT": cols["TFT"]})


def fortran():
    # float64 columns from one 2-D array: its block is the transposed
    # (Fortran-ordered) array
    arr = np.stack([cols["NHITS1"], cols["MLP"], cols["NLinear"]], axis=1)
    df = pd.DataFrame(arr, columns=["NHITS1", "MLP", "NLinear"])
    df.insert(0, "unique_id", ids)
    df.insert(2, "ds", ds)
    df.insert(3, "cutoff", cutoff)
    return df


def old_getstate(mgr):
    # pandas < 1.3's BlockManager.__getstate__ (kept since for SingleBlockManager;
    # BlockManager.__setstate__ still reads it)
    axes_array = list(mgr.axes)
    extra_state = {"0.14.1": {"axes": axes_array, "blocks": [{"values": b.values, "mgr_locs": b.mgr_locs.indexer}
                                                             for b in mgr.blocks]}}
    return axes_array, [b.values for b in mgr.blocks], [mgr.items[b.mgr_locs.indexer] for b in mgr.blocks], \
        extra_state


def getstate_layout(obj):
    # BlockManager as pandas < 1.3 pickled it: NEWOBJ + BUILD of that state
    saved = BlockManager.__dict__.get("__reduce__")
    BlockManager.__reduce__ = lambda self: (copyreg.__newobj__, (type(self),), old_getstate(self))
    try:
        return pickle.dumps(obj, protocol=4)
    finally:
        if saved is None:
            del BlockManager.__reduce__
        else:
            BlockManager.__reduce__ = saved


written = []
for name, make in (("split", split), ("consolidated", consolidated), ("fortran", fortran)):
    df = make()
    layouts = [("reduce", 4, pickle.dumps(df, protocol=4))]
    if name == "consolidated":
        layouts.append(("reduce", 5, pickle.dumps(df, protocol=5)))
        layouts.append(("getstate", 4, getstate_layout(df)))
    for layout, proto, data in layouts:
        back = pickle.loads(data)
        assert back.equals(df) and list(back.columns) == list(df.columns), (name, layout)
        stem = f"{tag}-{name}-{layout}-p{proto}"
        with open(os.path.join(out, stem + ".pkl"), "wb") as f:
            f.write(data)
        floats = [c for c in df.columns if df[c].dtype.kind == "f"]
        meta = {
            "pandas": pd.__version__, "numpy": np.__version__, "frame": name, "layout": layout, "protocol": proto,
            "blocks": [str(b.dtype) for b in df._mgr.blocks],
            "columns": [str(c) for c in df.columns],
            "scores": [[c, [float(v) for v in df[c].to_numpy()]] for c in floats],
        }
        with open(os.path.join(out, stem + ".json"), "w") as f:
            json.dump(meta, f, indent=1)
            f.write("\n")
        written.append(stem)
print(" ".join(written))
"""


def write_cs_df_pickles(dest):
    """pandas/<pandas version>-<frame>-<layout>-p<protocol>.pkl (+ .json) for
    every pinned pandas and the venv's."""
    os.makedirs(dest, exist_ok=True)
    for f in os.listdir(dest):
        if f.endswith((".pkl", ".json")):
            os.remove(os.path.join(dest, f))
    runs = [(ver, [ensure_pinned(line) for line in lines]) for ver, lines in CS_DF_PANDAS.items()]
    import pandas as pd
    runs.append((pd.__version__, []))
    for ver, paths in runs:
        env = dict(os.environ, PYTHONPATH=os.pathsep.join(paths), PYTHONHASHSEED="0", PYTHONDONTWRITEBYTECODE="1",
                   PYTHONWARNINGS="ignore")
        proc = subprocess.run([sys.executable, "-c", _CS_DF_SCRIPT, dest, f"pandas-{ver}"], env=env,
                              stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        if proc.returncode != 0:
            print(proc.stdout[-4000:])
            raise SystemExit(f"pandas {ver}: the frame could not be pickled")
        print(f"pandas {ver}: {proc.stdout.strip()}", flush=True)
    return 0


def run_writer(ver, prefix, out, pythonpath, extra):
    """legacy_writer.py under one release; returns its meta."""
    env = dict(os.environ, PYTHONPATH=os.pathsep.join(pythonpath), PYTHONHASHSEED="0", CUDA_VISIBLE_DEVICES="",
               OMP_NUM_THREADS="1", MKL_NUM_THREADS="1", PYTHONDONTWRITEBYTECODE="1", PYTHONWARNINGS="ignore")
    with tempfile.TemporaryDirectory() as tmp:
        meta_path = os.path.join(tmp, "meta.json")
        proc = subprocess.run([sys.executable, WRITER, "--version", ver, "--prefix", prefix, "--out", out,
                               "--meta", meta_path] + extra, env=env, cwd=tmp, stdout=subprocess.PIPE,
                              stderr=subprocess.STDOUT, text=True)
        for ln in proc.stdout.splitlines():
            if ln.startswith("  v") or "Error" in ln or "Traceback" in ln:
                print(ln, flush=True)
        if proc.returncode != 0:
            print(proc.stdout[-4000:])
            raise SystemExit(f"writer for {ver} failed ({proc.returncode})")
        return json.load(open(meta_path))


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(ROOT, "tests", "fixtures", "legacy"))
    ap.add_argument("--versions", default="", help="comma separated subset of the lock's versions")
    ap.add_argument("--only", default="", help="comma separated bundle spec suffixes (e.g. mlp_conformal_dist): "
                                                "write only these, keep everything else as it is")
    ap.add_argument("--cs-df-pickles", action="store_true",
                    help="only write pandas/: the conformity-score frame pickled by each pinned pandas")
    args = ap.parse_args(argv)
    out = os.path.abspath(args.out)
    if args.cs_df_pickles:
        return write_cs_df_pickles(os.path.join(out, "pandas"))
    pins = read_lock(LOCK)
    only = [v for v in args.versions.split(",") if v]
    specs = [s for s in args.only.split(",") if s]
    unknown = [v for v in only if v not in [p[1] for p in pins]]
    if unknown:
        ap.error(f"not in {LOCK}: {unknown}")
    run = [p for p in pins if not only or p[1] in only]
    man_path = os.path.join(out, "manifest.json")
    if specs and not os.path.isfile(man_path):
        ap.error("--only extends an existing manifest.json")
    old = json.load(open(man_path)) if (only or specs) and os.path.isfile(man_path) else {"versions": {},
                                                                                          "bundles": {}}
    os.makedirs(os.path.join(out, "bundles"), exist_ok=True)
    os.makedirs(os.path.join(out, "cases"), exist_ok=True)
    t0 = time.time()
    metas = {}
    for name, ver, digest, line in run:
        prefix, fam = prefix_of(ver)
        # Drop this version's previous output (with --only: of those specs).
        mine = (lambda n, prefix=prefix: n.startswith(prefix + "_")) if not specs else \
            (lambda n, prefix=prefix: any(n == f"{prefix}_{s}" or n.startswith(f"{prefix}_{s}__") for s in specs))
        for d in os.listdir(os.path.join(out, "bundles")):
            if mine(d):
                shutil.rmtree(os.path.join(out, "bundles", d))
        for f in os.listdir(os.path.join(out, "cases")):
            if mine(f[: -len(".json")]):
                os.remove(os.path.join(out, "cases", f))
        src = ensure_wheel(name, ver, digest, line)
        t = time.time()
        print(f"== neuralforecast {ver} ({prefix})", flush=True)
        extra = ["--only", ",".join(specs)] if specs else []
        meta = run_writer(ver, prefix, out, [src], extra)
        if ver in PINNED_PANDAS:
            paths = [ensure_pinned(p) for p in PINNED_PANDAS[ver]]
            print(f"== neuralforecast {ver} ({prefix}) with {', '.join(p.split(' ')[0] for p in PINNED_PANDAS[ver])}",
                  flush=True)
            pinned = run_writer(ver, prefix, out, [src] + paths, extra + ["--pinned-pandas"])
            for bname, rec in pinned["bundles"].items():
                rec["writer_runtime"] = pinned["runtime"]
                meta["bundles"][bname] = rec
            meta["pinned_pandas"] = {"wheels": PINNED_PANDAS[ver], "writer_runtime": pinned["runtime"]}
        meta["seconds"] = round(time.time() - t, 1)
        meta["wheel_sha256"] = digest
        metas[ver] = meta
        print(f"   writer {ver}: {meta['seconds']}s", flush=True)

    fresh = {b for meta in metas.values() for b in meta["bundles"]}
    if specs:
        bundles = {k: v for k, v in old["bundles"].items() if k not in fresh}
    else:
        bundles = {k: v for k, v in old["bundles"].items() if v.get("writer_version") not in metas}
    for ver, meta in metas.items():
        prefix, fam = prefix_of(ver)
        for bname, rec in meta["bundles"].items():
            if "skipped" in rec:
                bundles[bname] = {"writer_version": ver, "family": fam, "variant": rec["variant"],
                                  "classes": rec["models"], "skipped": rec["skipped"]}
                continue
            bundles[bname] = bundle_entry(bname, ver, fam, rec, os.path.join(out, "bundles", bname), out)
            if "writer_runtime" in rec:
                bundles[bname]["writer_runtime"] = rec["writer_runtime"]
            print(f"   nf33 {bname}: {bundles[bname]['nf33']['result']}"
                  f"{' (allow_pickle)' if bundles[bname]['nf33'].get('allow_pickle_required') else ''}", flush=True)
    order = [p[1] for p in pins]
    versions = {}
    for ver in order:
        if ver in metas and specs and ver in old["versions"]:
            versions[ver] = merge_summary(old["versions"][ver], ver, bundles)
        elif ver in metas:
            versions[ver] = version_summary(ver, metas[ver], bundles)
        elif ver in old["versions"]:
            versions[ver] = old["versions"][ver]
        if ver in metas and "pinned_pandas" in metas[ver]:
            versions[ver]["pinned_pandas"] = metas[ver]["pinned_pandas"]
    # Per bundle, keep only the hyper_parameters keys beyond the release's common set.
    for bname, b in bundles.items():
        if "skipped" in b or bname not in fresh:
            continue
        b.pop("configuration_keys", None)
        common = set(versions[b["writer_version"]]["hyper_parameters_common_keys"])
        for c in b["checkpoints"].values():
            keys = c.pop("hyper_parameters_keys", None)
            c.pop("zip_entries_non_data", None)
            c.pop("zip_meta", None)
            if keys is not None:
                c["hyper_parameters_extra_keys"] = sorted(set(keys) - common)
    bundles = dict(sorted(bundles.items(), key=lambda kv: (order.index(kv[1]["writer_version"]), kv[0])))
    elapsed = round(time.time() - t0, 1)
    manifest = {
        "generator": "python/make_legacy_fixtures.py",
        "lock": "python/legacy-writers.lock",
        "nf33_version": neuralforecast.__version__,
        "nf33_tolerance": {"atol": ATOL, "rtol": RTOL},
        "versions": versions,
        "bundles": bundles,
    }
    text = dump_json(manifest) + "\n"
    assert json.loads(text) == json.loads(json.dumps(manifest))
    with open(man_path, "w") as f:
        f.write(text)
    write_readme(out, manifest)
    size = sum(os.path.getsize(os.path.join(dp, fn)) for dp, _, fns in os.walk(out) for fn in fns)
    print(f"done: {sum('skipped' not in b for b in bundles.values())} bundles in {elapsed:.1f}s, "
          f"{size / 1e6:.2f} MB -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
