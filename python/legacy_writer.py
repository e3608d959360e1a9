#!/usr/bin/env python
"""Writes legacy (pre-3.3, pickle "v1") NeuralForecast bundles with an OLD release.

Run by python/make_legacy_fixtures.py, never by hand: the driver puts one
unpacked NeuralForecast wheel (3.2.2, 3.1.9, 3.0.2, 2.0.1 or 1.7.7) first on
PYTHONPATH of the project venv and runs

    python python/legacy_writer.py --version X.Y.Z --prefix vXY --out DIR --meta FILE

For every served model class the running version has, plus a few option
variants, it trains a tiny seeded model on synthetic data, writes exactly what
``nf.save(dir, overwrite=True, save_dataset=False)`` writes to
``DIR/bundles/<bundle>/``, reloads the bundle with *this version's*
``NeuralForecast.load`` and writes ``DIR/cases/<bundle>__<case>.json`` with the
loaded bundle's ``predict`` output (same encoding as python/make_fixtures.py).
What it did (options, dropped kwargs, checkpoint / configuration keys, skips
and their reasons) goes to the JSON file FILE for the driver's manifest.

Specs with a ``pandas`` key (e.g. ``"2."``) are written only in a run whose
pandas matches (the driver's pinned-pandas pass, ``--pinned-pandas``), and only
they are written in such a run.

Only helpers of make_fixtures.py that run on every version are imported.
"""

from __future__ import annotations

import argparse
import inspect
import json
import os
import pickle
import shutil
import sys
import tempfile
import time
import traceback
import zipfile

HERE = os.path.dirname(os.path.abspath(__file__))
sys.path.insert(0, HERE)

# make_fixtures sets the single-thread / CPU environment before torch loads.
import neuralforecast  # noqa: E402
import neuralforecast.models as M  # noqa: E402
import numpy as np  # noqa: E402
import torch  # noqa: E402
from make_fixtures import (  # noqa: E402
    case_request,
    concat,
    dump_case,
    exog_frame,
    make_series,
    predictions_to_records,
    records_to_df,
    tail_n,
    train_set,
    trainer_kwargs,
)
from neuralforecast import NeuralForecast  # noqa: E402
from neuralforecast.losses.pytorch import MQLoss  # noqa: E402
from neuralforecast.utils import PredictionIntervals  # noqa: E402

UIDS = ("s1", "s2", "s3")
STEPS = 20
H, L = 6, 12

# Served classes (the Rust service's list) in a fixed order; n_series=3 for the
# multivariate ones, whose cases always hold exactly s1, s2, s3.
MULTIVARIATE = {"MLPMultivariate", "TSMixer", "TSMixerx", "iTransformer", "TimeMixer", "SOFTS", "StemGNN",
                "TimeXer", "RMoK", "XLinear"}
CLASS_KWARGS = {
    "MLP": dict(hidden_size=16, num_layers=2),
    "DLinear": dict(moving_avg_window=5),
    "NLinear": dict(),
    "NBEATS": dict(n_blocks=[1, 1, 1], mlp_units=[[8, 8], [8, 8], [8, 8]]),
    "NBEATSx": dict(n_blocks=[1, 1, 1], mlp_units=[[8, 8], [8, 8], [8, 8]]),
    "NHITS": dict(n_blocks=[1, 1, 1], mlp_units=[[8, 8], [8, 8], [8, 8]], n_pool_kernel_size=[2, 2, 1],
                  n_freq_downsample=[3, 2, 1]),
    "RNN": dict(encoder_n_layers=1, encoder_hidden_size=8, decoder_hidden_size=8, decoder_layers=2),
    "LSTM": dict(encoder_n_layers=1, encoder_hidden_size=8, decoder_hidden_size=8, decoder_layers=2),
    "GRU": dict(encoder_n_layers=1, encoder_hidden_size=8, decoder_hidden_size=8, decoder_layers=2),
    "DilatedRNN": dict(cell_type="LSTM", dilations=[[1, 2]], encoder_hidden_size=8, decoder_hidden_size=8),
    "TCN": dict(kernel_size=2, dilations=[1, 2], encoder_hidden_size=8, decoder_hidden_size=8),
    "BiTCN": dict(hidden_size=8),
    "TFT": dict(hidden_size=8, n_head=2),
    "PatchTST": dict(patch_len=6, stride=3, hidden_size=8, n_heads=2, encoder_layers=1, linear_hidden_size=16),
    "TiDE": dict(hidden_size=16, decoder_output_dim=4, temporal_decoder_dim=8, num_encoder_layers=1,
                 num_decoder_layers=1),
    "TSMixer": dict(n_series=3, n_block=1, ff_dim=8),
    "TSMixerx": dict(n_series=3, n_block=1, ff_dim=8),
    "iTransformer": dict(n_series=3, hidden_size=8, n_heads=2, e_layers=1, d_ff=16),
    "MLPMultivariate": dict(n_series=3, hidden_size=16, num_layers=2),
    # sin/cos tables of [1, 5000, hidden] are saved in both embeddings: hidden 2
    "VanillaTransformer": dict(hidden_size=2, n_head=1, conv_hidden_size=4, encoder_layers=1, decoder_layers=1),
    # factor=5: 5*ceil(ln 12)=15 >= 12, so ProbSparse attention keeps every query.
    # n_head >= 2: with one head, _prob_QK's .squeeze() drops the head axis and
    # the query gather broadcasts to [B, B, u] (minutes per step, GBs of RAM).
    "Informer": dict(hidden_size=2, n_head=2, conv_hidden_size=4, factor=5, encoder_layers=1, decoder_layers=1),
    "Autoformer": dict(hidden_size=8, n_head=2, conv_hidden_size=8, MovingAvg_window=5, encoder_layers=1,
                       decoder_layers=1),
    "FEDformer": dict(hidden_size=8, conv_hidden_size=8, mode_select="low", modes=3, MovingAvg_window=5,
                      encoder_layers=1, decoder_layers=1),
    # TimesNet, TimeMixer and TimeXer save a [1, 5000, width] positional table too
    "TimesNet": dict(hidden_size=2, conv_hidden_size=4, top_k=2, num_kernels=2, encoder_layers=1),
    "TimeMixer": dict(n_series=3, d_model=2, d_ff=8, e_layers=1, moving_avg=5, down_sampling_layers=1,
                      down_sampling_window=2, down_sampling_method="avg"),
    "SOFTS": dict(n_series=3, hidden_size=8, d_core=4, e_layers=1, d_ff=16),
    "KAN": dict(hidden_size=8, n_hidden_layers=1),
    "StemGNN": dict(n_series=3, multi_layer=1),
    "TimeXer": dict(n_series=3, patch_len=6, hidden_size=2, n_heads=1, e_layers=1, d_ff=8),
    "RMoK": dict(n_series=3, taylor_order=3, jacobi_degree=4),
    "XLinear": dict(n_series=3, hidden_size=8, temporal_ff=8, channel_ff=3),
    "DeepNPTS": dict(hidden_size=8, n_layers=1),
}
SERVED = list(CLASS_KWARGS)


def model_params(cls):
    """Every argument name in the class's __init__ chain (1.7 passes `alias`
    through **trainer_kwargs to the base class)."""
    names = set()
    for klass in cls.__mro__:
        if "__init__" in vars(klass):
            names.update(inspect.signature(klass.__init__).parameters)
    return names


def loss_name(loss):
    if loss is None:
        return None
    if hasattr(loss, "quantiles") and type(loss).__name__ == "MQLoss":
        q = [round(float(x), 4) for x in loss.quantiles.flatten().tolist()]
        return f"MQLoss(quantiles={q})"
    return type(loss).__name__


# --------------------------------------------------------------------------
# Data and cases (deterministic, identical across versions for a bundle suffix)
# --------------------------------------------------------------------------

def uv_data(seed, freq="D", end="2024-03-31", period=7, single=False):
    """Cases: tails of the three training series (different lengths), then new
    series at other scales, one shorter than input_size (zero left-padding).
    single: one `mixed` case (two tails + a short and a large new series)."""
    tr = train_set([("s1", 100), ("s2", 90), ("s3", 80)], end, freq, seed, period)
    end_b = tr["ds"].max()
    n2 = make_series("n2", end_b, L - 4, freq, seed + 102, level=40.0, trend=1.0, amp=5.0, period=period, noise=1.0)
    n3 = make_series("n3", end_b, L + 1, freq, seed + 103, level=1000.0, trend=2.5, amp=80.0, period=period,
                     noise=10.0)
    if single:
        return tr, None, [("mixed", concat(tail_n(tr, "s1", L + 4), tail_n(tr, "s2", L + 1), n2, n3), None, None)]
    a = concat(tail_n(tr, "s1", L + 4), tail_n(tr, "s2", L + 1), tail_n(tr, "s3", L))
    b = concat(
        make_series("n1", end_b, L + 4, freq, seed + 101, level=350.0, trend=-0.5, amp=25.0, period=period,
                    noise=2.5),
        n2, n3,
    )
    return tr, None, [("tail", a, None, None), ("rescaled_short", b, None, None)]


def mv_data(seed, freq="D", end="2024-03-31", period=7, single=False):
    """As uv_data, but every case holds exactly s1, s2, s3 (n_series=3)."""
    tr = train_set([(u, 90) for u in UIDS], end, freq, seed, period)
    end_b = tr["ds"].max()
    if single:
        s3 = make_series("s3", end_b, L, freq, seed + 103, level=1000.0, trend=2.5, amp=80.0, period=period,
                         noise=10.0)
        return tr, None, [("mixed", concat(tail_n(tr, "s1", L + 4), tail_n(tr, "s2", L + 1), s3), None, None)]
    a = concat(tail_n(tr, "s1", L + 4), tail_n(tr, "s2", L + 1), tail_n(tr, "s3", L))
    b = concat(
        make_series("s1", end_b, L + 4, freq, seed + 101, level=350.0, trend=-0.5, amp=25.0, period=period,
                    noise=2.5),
        make_series("s2", end_b, L + 4, freq, seed + 102, level=40.0, trend=1.0, amp=5.0, period=period, noise=1.0),
        make_series("s3", end_b, L + 4, freq, seed + 103, level=1000.0, trend=2.5, amp=80.0, period=period,
                    noise=10.0),
    )
    return tr, None, [("tail", a, None, None), ("rescaled", b, None, None)]


def exog_data(seed, keep, freq="D", end="2024-04-30"):
    """keep: subset of {"futr", "stat"} (no hist exog in these bundles)."""
    def strip(df, fu, st):
        if "futr" not in keep:
            df = df.drop(columns=["promo", "wave"])
            fu = None
        return df, fu, (st if "stat" in keep else None)

    tr, _, st = exog_frame([("s1", 100), ("s2", 90), ("s3", 80)], end, freq, H, seed, with_hist=False)
    tr, _, st = strip(tr, None, st)
    a = strip(*exog_frame([("s1", L + 4), ("s2", L + 1), ("s3", L)], "2024-05-20", freq, H, seed + 1,
                          with_hist=False))
    # three series in every case: up to 3.0, predict(df=...) applies the local
    # scalers fitted on the training series by position (it needs as many series)
    b_df, b_fu, b_st = exog_frame([("s1", L + 6), ("s2", L - 3), ("s3", L + 2)], "2024-08-31", freq, H, seed + 2,
                                  with_hist=False)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5, 2.5]
    b = strip(b_df, b_fu, b_st)
    return tr, st, [("shortmix",) + a, ("rescaled",) + b]


# predict(quantiles=...) arrived in 3.0; 1.x and 2.x take only level.
PREDICT_QUANTILES = "quantiles" in inspect.signature(NeuralForecast.predict).parameters


def conformal_data(seed, freq="D", end="2024-03-31", period=7):
    """Three training series; every case holds three series too, as
    nf.predict pairs the conformity scores with the request's series by
    position. Point, level and (3.0+) quantiles cases: tails of the training
    series, and new series at other scales (one shorter than input_size)."""
    tr = train_set([("s1", 100), ("s2", 90), ("s3", 80)], end, freq, seed, period)
    end_b = tr["ds"].max()
    a = concat(tail_n(tr, "s1", L + 4), tail_n(tr, "s2", L + 1), tail_n(tr, "s3", L))
    b = concat(
        make_series("n1", end_b, L + 4, freq, seed + 101, level=350.0, trend=-0.5, amp=25.0, period=period,
                    noise=2.5),
        make_series("n2", end_b, L - 4, freq, seed + 102, level=40.0, trend=1.0, amp=5.0, period=period, noise=1.0),
        make_series("n3", end_b, L + 1, freq, seed + 103, level=1000.0, trend=2.5, amp=80.0, period=period,
                    noise=10.0),
    )
    cases = [("point", a, None, None), ("level", a, None, None, {"level": [80, 95]}),
             ("level_rescaled", b, None, None, {"level": [60, 99.5]})]
    if PREDICT_QUANTILES:
        cases.append(("quantiles", b, None, None, {"quantiles": [0.9, 0.1, 0.5, 0.25]}))
    return tr, None, cases


# --------------------------------------------------------------------------
# Bundle specs
# --------------------------------------------------------------------------
# name suffix -> dict(models=[(class, kwargs)], nf=dict(freq, local_scaler_type?), data=callable, note)

def base_specs():
    out = {}
    for i, cls in enumerate(SERVED):
        seed = 100 + 10 * i
        kw = dict(CLASS_KWARGS[cls], scaler_type="standard")
        # one case per class bundle (the variants below have two)
        data = (lambda s=seed: mv_data(s, single=True)) if cls in MULTIVARIATE else \
            (lambda s=seed: uv_data(s, single=True))
        out[cls.lower()] = dict(models=[(cls, kw)], nf=dict(freq="D"), data=data, seed=seed, variant=None)
    return out


def variant_specs():
    mlp = CLASS_KWARGS["MLP"]
    nhits = CLASS_KWARGS["NHITS"]
    return {
        "mlp_static": dict(
            models=[("MLP", dict(mlp, scaler_type="standard", stat_exog_list=["size", "region"]))],
            nf=dict(freq="D", local_scaler_type="standard"), data=lambda: exog_data(600, {"stat"}), seed=600,
            variant="local_scaler_type=standard + static exog"),
        "nhits_futr": dict(
            models=[("NHITS", dict(nhits, scaler_type="standard", futr_exog_list=["promo", "wave"]))],
            nf=dict(freq="D"), data=lambda: exog_data(610, {"futr"}), seed=610, variant="future exog"),
        "tide_standard": dict(
            models=[("TiDE", dict(CLASS_KWARGS["TiDE"], scaler_type="standard"))],
            nf=dict(freq="D", local_scaler_type="standard"), data=lambda: uv_data(620), seed=620,
            variant="local_scaler_type=standard"),
        "nhits_mq": dict(
            models=[("NHITS", dict(nhits, scaler_type="standard", loss=("MQLoss", dict(level=[80]))))],
            nf=dict(freq="h"), data=lambda: uv_data(630, freq="h", end="2024-01-10 23:00:00", period=24),
            seed=630, variant="MQLoss(level=[80]), hourly"),
        "multi": dict(
            models=[("MLP", dict(mlp, scaler_type="standard")), ("NHITS", dict(nhits, scaler_type="robust"))],
            nf=dict(freq="W"), data=lambda: uv_data(640, freq="W", end="2024-06-30", period=13), seed=640,
            variant="two models (MLP + NHITS), weekly"),
        "mlp_robust": dict(
            models=[("MLP", dict(mlp, scaler_type="robust"))],
            nf=dict(freq="MS"), data=lambda: uv_data(650, freq="MS", end="2023-12-01", period=12), seed=650,
            variant="scaler_type=robust, month start"),
        # common/_modules.MLP(num_layers=1) was Linear-act-Linear up to 3.0, one Linear since 3.1
        "lstm_dec1": dict(
            models=[("LSTM", dict(CLASS_KWARGS["LSTM"], decoder_layers=1, scaler_type="standard"))],
            nf=dict(freq="D"), data=lambda: uv_data(670), seed=670, variant="decoder_layers=1"),
        "mlp_alias": dict(
            models=[("MLP", dict(mlp, scaler_type="identity", alias="my_mlp"))],
            nf=dict(freq=1), data=lambda: uv_data(660, freq=1, end=300, period=5), seed=660,
            variant="custom alias 'my_mlp', integer ds"),
        # fit(prediction_intervals=...): configuration.pkl holds the conformity
        # scores as a pickled pandas DataFrame (`_cs_df`), one column per model
        "mlp_conformal_dist": dict(
            models=[("MLP", dict(mlp, scaler_type="standard")), ("NLinear", dict(scaler_type="robust"))],
            nf=dict(freq="D"), data=lambda: conformal_data(680), seed=680,
            fit=lambda: dict(prediction_intervals=PredictionIntervals(n_windows=3, method="conformal_distribution")),
            variant="MLP + NLinear, PredictionIntervals(n_windows=3, conformal_distribution)"),
        "mlp_conformal_err": dict(
            models=[("MLP", dict(mlp, scaler_type="standard"))],
            nf=dict(freq="W"), data=lambda: conformal_data(690, freq="W", end="2024-06-30", period=13), seed=690,
            fit=lambda: dict(prediction_intervals=PredictionIntervals(n_windows=3, method="conformal_error")),
            variant="PredictionIntervals(n_windows=3, conformal_error), weekly"),
        # written only in the driver's pinned-pandas pass: the DataFrame
        # pickled by pandas 2.x (object-dtype columns and index)
        "mlp_conformal_pandas2": dict(
            models=[("MLP", dict(mlp, scaler_type="standard")), ("NLinear", dict(scaler_type="robust"))],
            nf=dict(freq="D"), data=lambda: conformal_data(700), seed=700, pandas="2.",
            fit=lambda: dict(prediction_intervals=PredictionIntervals(n_windows=3, method="conformal_distribution")),
            variant="as mlp_conformal_dist, configuration.pkl pickled by pandas 2.x"),
    }


def build_model(cls_name, kwargs, seed):
    cls = getattr(M, cls_name)
    params = model_params(cls)
    kw, dropped = {}, []
    for k, v in kwargs.items():
        if k in params:
            kw[k] = v
        else:
            dropped.append(k)
    if isinstance(kw.get("loss"), tuple):
        lname, lkw = kw["loss"]
        kw["loss"] = {"MQLoss": MQLoss}[lname](**lkw)
    tk = trainer_kwargs(seed, STEPS, lr=1e-3 if cls_name not in ("DLinear", "NLinear") else 1e-2)
    # StemGNN's GLU widths grow with input_size
    return cls(h=H, input_size=L if cls_name != "StemGNN" else 4, **kw, **tk), dropped


# --------------------------------------------------------------------------
# What the files hold (read back with this version's own stack)
# --------------------------------------------------------------------------

def _jsonable(v):
    if isinstance(v, (str, int, float, bool)) or v is None:
        return v
    if isinstance(v, (list, tuple)):
        return [_jsonable(x) for x in v]
    if isinstance(v, dict):
        return {str(k): _jsonable(x) for k, x in v.items()}
    return f"<{type(v).__module__}.{type(v).__qualname__}>"


def describe_bundle(bdir):
    files = sorted(os.listdir(bdir))
    info = {"files": files, "checkpoints": {}}
    for fn in files:
        p = os.path.join(bdir, fn)
        if fn.endswith(".ckpt"):
            with zipfile.ZipFile(p) as z:
                entries = sorted(n for n in z.namelist() if "/data/" not in n)
                extra = {}
                for n in entries:
                    base = n.split("/", 1)[-1]
                    if base in ("version", ".format_version", "byteorder", ".storage_alignment"):
                        extra[base] = z.read(n).decode("utf-8", "replace").strip()
            content = torch.load(p, map_location="cpu", weights_only=False)
            hp = content["hyper_parameters"]
            info["checkpoints"][fn] = {
                "zip_entries_non_data": entries,
                "zip_meta": extra,
                "keys": sorted(content.keys()),
                "hyper_parameters_type": f"{type(hp).__module__}.{type(hp).__qualname__}",
                "hyper_parameters_keys": sorted(hp.keys()),
                "hyper_parameters": {k: _jsonable(v) for k, v in hp.items() if k not in ("loss", "valid_loss")},
                "loss": loss_name(hp.get("loss")),
                "valid_loss": loss_name(hp.get("valid_loss")),
                "state_dict_keys": len(content["state_dict"]),
                "versions_recorded": {k: content[k] for k in content if "version" in k.lower()},
            }
        elif fn.endswith(".pkl"):
            with open(p, "rb") as f:
                obj = pickle.load(f)
            if fn == "configuration.pkl":
                info["configuration_keys"] = list(obj.keys())
                info["configuration"] = {k: _jsonable(v) for k, v in obj.items()}
            elif fn == "alias_to_model.pkl":
                info["alias_to_model"] = _jsonable(obj)
    return info


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def predict_cases(nf2, bname, freq, cases, out):
    written = []
    for i, (cname, df, futr_df, st_df, *more) in enumerate(cases):
        # A fifth element holds predict() arguments (level, quantiles), sent
        # in the request body too.
        extra = more[0] if more else {}
        request = case_request(i, df, futr_df, st_df, freq)
        request.update(extra)
        kwargs = dict(df=records_to_df(request["df"], freq))
        if "futr_df" in request:
            kwargs["futr_df"] = records_to_df(request["futr_df"], freq)
        if "static_df" in request:
            kwargs["static_df"] = records_to_df(request["static_df"], freq)
        fc = nf2.predict(**kwargs, **extra)
        if "unique_id" not in fc.columns:  # 1.x: ids in the index
            fc = fc.reset_index()
        full = f"{bname}__{cname}"
        case = {"bundle": bname, "request": request,
                "expected": {"model": bname, "predictions": predictions_to_records(fc)}}
        dump_case(os.path.join(out, "cases", full + ".json"), case)
        written.append(full)
    return written


def build_bundle(bname, sp, out, load_kwargs):
    models, dropped = [], {}
    for cls_name, kw in sp["models"]:
        m, d = build_model(cls_name, kw, sp["seed"] + len(models))
        models.append(m)
        if d:
            dropped[cls_name] = d
    nf_kwargs = dict(sp["nf"])
    freq = nf_kwargs["freq"]
    train_df, static_df, cases = sp["data"]()
    fit_kwargs = sp["fit"]() if "fit" in sp else {}
    nf = NeuralForecast(models=models, **nf_kwargs)
    nf.fit(df=train_df, static_df=static_df, **fit_kwargs)
    bdir = os.path.join(out, "bundles", bname)
    shutil.rmtree(bdir, ignore_errors=True)
    nf.save(bdir, overwrite=True, save_dataset=False)
    nf2 = NeuralForecast.load(bdir, **load_kwargs)
    written = predict_cases(nf2, bname, freq, cases, out)
    opts = []
    for (cls_name, kw), m in zip(sp["models"], models):
        opts.append({
            "class": cls_name,
            "alias": getattr(m, "alias", None),
            # constructor kwargs passed besides h, input_size and the trainer settings
            # (scaler_type, loss, alias and exog lists are listed on their own)
            "kwargs": {k: _jsonable(v) for k, v in kw.items() if k not in dropped.get(cls_name, [])
                       and k not in ("scaler_type", "loss", "alias", "futr_exog_list", "hist_exog_list",
                                     "stat_exog_list")},
            "scaler_type": getattr(m, "scaler_type", kw.get("scaler_type")),
            "loss": loss_name(m.loss),
            "futr_exog_list": list(getattr(m, "futr_exog_list", []) or []),
            "hist_exog_list": list(getattr(m, "hist_exog_list", []) or []),
            "stat_exog_list": list(getattr(m, "stat_exog_list", []) or []),
        })
    rec = {
        "freq": freq,
        "h": H,
        "local_scaler_type": nf_kwargs.get("local_scaler_type"),
        "models": opts,
        "dropped_kwargs": dropped,
        "cases": written,
        "files": describe_bundle(bdir),
    }
    pi = fit_kwargs.get("prediction_intervals")
    if pi is not None:
        import pandas as pd
        cs = nf._cs_df
        rec["prediction_intervals"] = {k: getattr(pi, k) for k in ("method", "n_windows", "step_size")
                                       if hasattr(pi, k)}
        # what the pickled DataFrame is, for the manifest
        rec["conformity_scores"] = {
            "pandas": pd.__version__,
            "type": f"{type(cs).__module__}.{type(cs).__qualname__}",
            "shape": list(cs.shape),
            "dtypes": {str(k): str(v) for k, v in cs.dtypes.items()},
            "index": f"{type(cs.index).__qualname__}({cs.index.name})",
        }
    return rec


def main(argv=None):
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--version", required=True, help="expected neuralforecast version")
    ap.add_argument("--prefix", required=True, help="bundle name prefix, e.g. v32")
    ap.add_argument("--out", required=True)
    ap.add_argument("--meta", required=True)
    ap.add_argument("--only", default="", help="comma separated bundle suffixes")
    ap.add_argument("--pinned-pandas", action="store_true",
                    help="a pinned pandas is first on PYTHONPATH: write only the specs that ask for it")
    args = ap.parse_args(argv)
    if neuralforecast.__version__ != args.version:
        raise SystemExit(f"expected neuralforecast {args.version}, imported {neuralforecast.__version__} "
                         f"from {neuralforecast.__file__}")
    torch.set_num_threads(1)
    # 1.x passes load kwargs straight to torch.load, whose default became
    # weights_only=True in torch 2.6; 2.0+ set weights_only=False themselves.
    load_kwargs = {"weights_only": False} if args.version.startswith("1.") else {}
    out = os.path.abspath(args.out)
    os.makedirs(os.path.join(out, "cases"), exist_ok=True)
    specs = dict(base_specs())
    specs.update(variant_specs())
    only = [s for s in args.only.split(",") if s]
    meta = {
        "version": neuralforecast.__version__,
        "module_file": neuralforecast.__file__,
        "runtime": {"torch": torch.__version__, "python": sys.version.split()[0]},
        "writer_load_kwargs": load_kwargs,
        "served_classes_present": [c for c in SERVED if hasattr(M, c)],
        "served_classes_absent": [c for c in SERVED if not hasattr(M, c)],
        "bundles": {},
    }
    try:
        import pytorch_lightning as pl
        meta["runtime"]["pytorch_lightning"] = pl.__version__
    except ImportError:
        pass
    import pandas as pd
    meta["runtime"]["pandas"] = pd.__version__
    meta["runtime"]["numpy"] = np.__version__
    tmp = tempfile.mkdtemp(prefix="nd-legacy-")
    cwd = os.getcwd()
    os.chdir(tmp)  # stray lightning output never lands in the repo
    try:
        for suffix, sp in specs.items():
            if only and suffix not in only:
                continue
            want_pd = sp.get("pandas")
            if bool(want_pd) != args.pinned_pandas or (want_pd and not pd.__version__.startswith(want_pd)):
                continue  # written in the other pass (or not with this pandas): not listed
            bname = f"{args.prefix}_{suffix}"
            missing = [c for c, _ in sp["models"] if not hasattr(M, c)]
            if missing:
                continue  # class not in this version: not listed as a bundle
            t = time.time()
            try:
                rec = build_bundle(bname, sp, out, load_kwargs)
                rec["variant"] = sp["variant"]
                rec["seconds"] = round(time.time() - t, 1)
                meta["bundles"][bname] = rec
                print(f"  {bname}: {len(rec['cases'])} cases ({rec['seconds']}s)", flush=True)
            except Exception as e:  # noqa: BLE001 - record and move on
                shutil.rmtree(os.path.join(out, "bundles", bname), ignore_errors=True)
                for f in os.listdir(os.path.join(out, "cases")):
                    if f.startswith(bname + "__"):
                        os.remove(os.path.join(out, "cases", f))
                msg = f"{type(e).__name__}: {str(e).strip().splitlines()[0] if str(e).strip() else ''}"
                meta["bundles"][bname] = {"skipped": msg, "variant": sp["variant"],
                                          "models": [c for c, _ in sp["models"]],
                                          "traceback_tail": traceback.format_exc().strip().splitlines()[-6:]}
                print(f"  {bname}: SKIPPED {msg}", flush=True)
    finally:
        os.chdir(cwd)
        shutil.rmtree(tmp, ignore_errors=True)
    with open(args.meta, "w") as f:
        json.dump(meta, f, indent=1, sort_keys=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
