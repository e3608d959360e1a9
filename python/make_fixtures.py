#!/usr/bin/env python
"""Golden fixture generator: NeuralForecast 3.3.0 bundles + /predict cases.

Usage (from the repo root):
    V=$(scripts/python-env.sh)
    $V/bin/python python/make_fixtures.py [--out tests/fixtures] [--only NAME[,NAME...]] [--list]

For every bundle spec below it trains a small NeuralForecast object on seeded
synthetic data (or AirPassengers), writes exactly what
``nf.save(dir, overwrite=True, save_dataset=False)`` writes to
``<out>/bundles/<bundle>/``, reloads the bundle with ``NeuralForecast.load``
and, for each case, writes ``<out>/cases/<case>.json`` holding the /predict
request body (docs/contract.md) and the loaded bundle's ``predict`` output.

Everything is deterministic (fixed ``random_seed`` per model, seeded numpy
data, CPU, one torch thread), so running it twice gives identical files.
Nothing is downloaded.
"""

from __future__ import annotations

import argparse
import importlib
import json
import logging
import os
import shutil
import sys
import tempfile
import time
import warnings

# Before torch/lightning import: keep everything on CPU and single threaded.
os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")
os.environ.setdefault("MKL_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402
from neuralforecast import NeuralForecast  # noqa: E402
from neuralforecast.losses.pytorch import MSE, MQLoss  # noqa: E402
from neuralforecast.models import MLP, DLinear, NLinear  # noqa: E402
from neuralforecast.utils import AirPassengersDF  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
for _name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)

# Scratch space: the driver chdirs here so stray lightning output (if any)
# never lands in the repo; bundles are saved here first (see same_bundle).
_TMP_ROOT = None  # set by main()


def trainer_kwargs(seed, max_steps, lr=1e-3):
    return dict(
        random_seed=seed,
        max_steps=max_steps,
        learning_rate=lr,
        accelerator="cpu",
        devices=1,
        enable_progress_bar=False,
        enable_model_summary=False,
        logger=False,
        enable_checkpointing=False,
    )


# --------------------------------------------------------------------------
# Data
# --------------------------------------------------------------------------

def synth_values(n, seed, level=100.0, trend=0.5, amp=10.0, period=7, noise=2.0, phase=0.0):
    """Trend + seasonality + noise, strictly positive (boxcox-safe), 3 decimals."""
    rng = np.random.default_rng(seed)
    t = np.arange(n, dtype=np.float64)
    y = level + trend * t + amp * np.sin(2 * np.pi * t / period + phase) + rng.normal(0.0, noise, n)
    y = np.maximum(y, 1.0)
    return np.round(y, 3)


def make_series(uid, end, n, freq, seed, **kw):
    """One series of n points at freq ending at `end` (timestamp or int)."""
    if isinstance(freq, int):
        ds = np.arange(int(end) - (n - 1) * freq, int(end) + 1, freq, dtype=np.int64)
    else:
        ds = pd.date_range(end=pd.Timestamp(end), periods=n, freq=freq)
    return pd.DataFrame({"unique_id": uid, "ds": ds, "y": synth_values(n, seed, **kw)})


def air_series(uid, scale=1.0, shift=0.0, last_n=None):
    d = AirPassengersDF.copy()
    d["unique_id"] = uid
    d["y"] = np.round(d["y"].astype(np.float64) * scale + shift, 3)
    d["ds"] = pd.to_datetime(d["ds"])
    if last_n is not None:
        d = d.tail(last_n)
    return d[["unique_id", "ds", "y"]].reset_index(drop=True)


def concat(*dfs):
    return pd.concat(dfs, ignore_index=True)


def tail_n(df, uid, n):
    return df[df["unique_id"] == uid].tail(n)


# --------------------------------------------------------------------------
# Request / response encoding
# --------------------------------------------------------------------------

def _is_hourly(freq):
    return isinstance(freq, str) and freq.lower() in ("h", "1h")


def fmt_ds_request(v, freq):
    if isinstance(freq, int):
        return int(v)
    ts = pd.Timestamp(v)
    return ts.strftime("%Y-%m-%dT%H:%M:%S") if _is_hourly(freq) else ts.strftime("%Y-%m-%d")


def _py(v):
    if isinstance(v, (np.integer,)):
        return int(v)
    if isinstance(v, (np.floating, float)):
        return float(v)
    return v


def to_records(df, freq, shuffle_seed=None):
    df = df.reset_index(drop=True)
    if shuffle_seed is not None:
        idx = np.random.default_rng(shuffle_seed).permutation(len(df))
        df = df.iloc[idx].reset_index(drop=True)
    out = []
    for row in df.to_dict("records"):
        rec = {}
        for k, v in row.items():
            if k == "ds":
                rec[k] = fmt_ds_request(v, freq)
            elif k == "unique_id":
                rec[k] = _py(v)
            elif isinstance(v, str):
                rec[k] = v  # a category (cat_exog_list)
            else:
                rec[k] = float(v)
        out.append(rec)
    return out


def records_to_df(records, freq, kind="df"):
    """What a /predict service does with the JSON body (pandas side)."""
    df = pd.DataFrame(records)
    if "ds" in df.columns:
        if isinstance(freq, int):
            df["ds"] = df["ds"].astype(np.int64)
        else:
            df["ds"] = pd.to_datetime(df["ds"])
    for c in df.columns:
        if c not in ("unique_id", "ds") and not df[c].map(lambda v: isinstance(v, str)).any():
            df[c] = df[c].astype(np.float64)
    return df


def predictions_to_records(fc):
    fc = fc.sort_values(["unique_id", "ds"], kind="stable").reset_index(drop=True)
    is_dt = pd.api.types.is_datetime64_any_dtype(fc["ds"])
    out = []
    for row in fc.to_dict("records"):
        rec = {}
        for k, v in row.items():
            if k == "ds":
                rec[k] = pd.Timestamp(v).strftime("%Y-%m-%dT%H:%M:%S") if is_dt else int(v)
            elif k == "unique_id":
                rec[k] = _py(v)
            else:
                f = float(v)
                if not np.isfinite(f):
                    raise ValueError(f"non-finite prediction in column {k}: {f}")
                rec[k] = f
        out.append(rec)
    return out


def dump_case(path, case):
    """Compact but diffable JSON: one record per line."""
    def arr(rows, ind):
        return "[\n" + ",\n".join(ind + "  " + json.dumps(r) for r in rows) + "\n" + ind + "]"

    parts = ['{\n  "bundle": ' + json.dumps(case["bundle"]) + ",\n  \"request\": {"]
    req = []
    for key in ("df", "futr_df", "static_df"):
        if key in case["request"]:
            req.append(f'\n    "{key}": ' + arr(case["request"][key], "    "))
    if "h" in case["request"]:
        req.append(f'\n    "h": {int(case["request"]["h"])}')
    for key in ("level", "quantiles"):
        if key in case["request"]:
            req.append(f'\n    "{key}": ' + json.dumps(case["request"][key]))
    parts.append(",".join(req) + "\n  },")
    parts.append('\n  "expected": {"model": ' + json.dumps(case["expected"]["model"]) + ', "predictions": '
                 + arr(case["expected"]["predictions"], "  ") + "}\n}\n")
    text = "".join(parts)
    json.loads(text)  # sanity
    with open(path, "w") as f:
        f.write(text)


# --------------------------------------------------------------------------
# Bundle specs
# --------------------------------------------------------------------------
# Each spec: name -> dict(build=callable returning (models, nf_kwargs, train_df, static_df),
#                         freq, cases=callable returning [(case_name, df, futr_df, static_df)])

SPECS = {}
README_ROWS = {}


def spec(name, row):
    def deco(fn):
        SPECS[name] = fn
        README_ROWS[name] = row
        return fn
    return deco


def std_cases(name, train, freq, input_size, seeds, period, level=100.0, trend=0.5, amp=10.0,
              end_b=None, int_ids=False):
    """Case a: tails of the training series (different lengths), shuffled.
    Case b: new series at a different scale/window, one shorter than input_size."""
    uids = sorted(train["unique_id"].unique())
    lens = [len(train[train.unique_id == u]) for u in uids]
    ns = [min(lens[0], input_size * 3), min(lens[1], input_size + 5)]
    if len(uids) > 2:
        ns.append(min(lens[2], input_size))
    a = concat(*[tail_n(train, u, n) for u, n in zip(uids, ns)])
    end = end_b if end_b is not None else train["ds"].max()
    short = max(2, input_size - 4)
    b = concat(
        make_series("s1", end, input_size * 2 + 3, freq, seeds + 101, level=level * 3.0 + 50, trend=-trend,
                    amp=amp * 2.5, period=period, noise=amp / 4),
        make_series("s2", end, short, freq, seeds + 102, level=level * 0.4, trend=trend * 2,
                    amp=amp * 0.5, period=period, noise=amp / 8),
        make_series("s10", end, input_size + 1, freq, seeds + 103, level=level * 10, trend=trend * 5,
                    amp=amp * 8, period=period, noise=amp),
    )
    cases = [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None)]
    return cases


def train_set(uids_lens, end, freq, seed, period, level=100.0, trend=0.5, amp=10.0, noise=2.0):
    return concat(*[
        make_series(u, end, n, freq, seed + i, level=level * (1 + 0.3 * i), trend=trend * (1 + 0.5 * i),
                    amp=amp * (1 + 0.2 * i), period=period, noise=noise, phase=0.7 * i)
        for i, (u, n) in enumerate(uids_lens)
    ])


# ---- freq D: one of each model first (the parity tests of every class need these first) ----

@spec("mlp_d_standard", ("MLP", "D", 7, 14, "standard", "-", "MAE", "-"))
def _mlp_d_standard(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 10, 7)
    models = [MLP(h=7, input_size=14, hidden_size=32, num_layers=2, scaler_type="standard",
                  **trainer_kwargs(1, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 10, 7)


@spec("dlinear_d_identity", ("DLinear(moving_avg_window=7)", "D", 7, 14, "identity", "-", "MAE", "-"))
def _dlinear_d_identity(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 20, 7)
    models = [DLinear(h=7, input_size=14, moving_avg_window=7, scaler_type="identity",
                      **trainer_kwargs(2, 40, lr=1e-2))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 20, 7)


@spec("nlinear_d_robust", ("NLinear", "D", 7, 21, "robust", "-", "MAE", "-"))
def _nlinear_d_robust(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 30, 7)
    models = [NLinear(h=7, input_size=21, scaler_type="robust", **trainer_kwargs(3, 40, lr=1e-2))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 21, 30, 7)


@spec("multi_d", ("MLP + DLinear(moving_avg_window=5) + NLinear", "D", 7, 14,
                  "MLP standard, DLinear robust, NLinear identity", "-", "MAE", "-"))
def _multi_d(name):
    freq = "D"
    tr = train_set([("s1", 110), ("s2", 95), ("s3", 80)], "2024-02-29", freq, 40, 7)
    models = [
        MLP(h=7, input_size=14, hidden_size=16, num_layers=2, scaler_type="standard", **trainer_kwargs(4, 30)),
        DLinear(h=7, input_size=14, moving_avg_window=5, scaler_type="robust", **trainer_kwargs(5, 30, lr=1e-2)),
        NLinear(h=7, input_size=14, scaler_type="identity", **trainer_kwargs(6, 30, lr=1e-2)),
    ]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 40, 7)


@spec("mlp_d_mse", ("MLP", "D", 1, 10, "minmax1", "robust", "MSE", "-"))
def _mlp_d_mse(name):
    freq = "D"
    tr = train_set([("s1", 80), ("s2", 70), ("s3", 60)], "2023-12-31", freq, 50, 7)
    models = [MLP(h=1, input_size=10, hidden_size=16, num_layers=2, scaler_type="minmax1", loss=MSE(),
                  **trainer_kwargs(7, 40))]
    return models, dict(freq=freq, local_scaler_type="robust"), tr, None, std_cases(name, tr, freq, 10, 50, 7)


# ---- hourly ----

@spec("mlp_h_minmax", ("MLP", "h", 12, 24, "minmax", "standard", "MAE", "-"))
def _mlp_h_minmax(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 150), ("s3", 120)], "2024-01-10 23:00:00", freq, 60, 24)
    models = [MLP(h=12, input_size=24, hidden_size=32, num_layers=2, scaler_type="minmax",
                  **trainer_kwargs(8, 40))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, None,
            std_cases(name, tr, freq, 24, 60, 24, end_b="2024-02-01 05:00:00"))


@spec("dlinear_h_revin", ("DLinear(moving_avg_window=5)", "h", 12, 24, "revin", "-", "MAE", "-"))
def _dlinear_h_revin(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 70, 24)
    models = [DLinear(h=12, input_size=24, moving_avg_window=5, scaler_type="revin",
                      **trainer_kwargs(9, 40, lr=1e-2))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 24, 70, 24)


# ---- weekly (W = W-SUN) ----

def offanchor_case(name, freq, input_size, seed, period, end_on, end_off, level=100.0):
    """Series whose ds are all off the freq anchor (plus one on it)."""
    n_off = input_size + 6
    if freq == "W":
        ds_off = pd.date_range(end=end_off, periods=n_off, freq="7D")  # e.g. Wednesdays
    elif freq == "ME":
        ds_off = pd.DatetimeIndex([pd.Timestamp(end_off) - pd.DateOffset(months=k) for k in range(n_off)][::-1])
    elif freq == "QS":
        ds_off = pd.DatetimeIndex([pd.Timestamp(end_off) - pd.DateOffset(months=3 * k) for k in range(n_off)][::-1])
    else:
        raise ValueError(freq)
    off = pd.DataFrame({"unique_id": "off1", "ds": ds_off,
                        "y": synth_values(n_off, seed + 201, level=level, period=period)})
    on = make_series("on1", end_on, input_size + 2, freq, seed + 202, level=level * 1.5, period=period)
    return (f"{name}__offanchor", concat(off, on), None, None)


@spec("nlinear_w_minmax1", ("NLinear", "W (W-SUN)", 4, 12, "minmax1", "robust", "MAE", "-"))
def _nlinear_w_minmax1(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 80, 13)
    models = [NLinear(h=4, input_size=12, scaler_type="minmax1", **trainer_kwargs(10, 40, lr=1e-2))]
    cases = std_cases(name, tr, freq, 12, 80, 13)
    cases.append(offanchor_case(name, freq, 12, 80, 13, "2024-09-01", "2024-09-04"))
    return models, dict(freq=freq, local_scaler_type="robust"), tr, None, cases


@spec("mlp_w_invariant", ("MLP", "W (W-SUN)", 4, 12, "invariant", "robust-iqr", "MAE", "-"))
def _mlp_w_invariant(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 90, 13)
    models = [MLP(h=4, input_size=12, hidden_size=16, num_layers=2, scaler_type="invariant",
                  **trainer_kwargs(11, 40))]
    return (models, dict(freq=freq, local_scaler_type="robust-iqr"), tr, None,
            std_cases(name, tr, freq, 12, 90, 13, end_b="2025-01-05"))


# ---- monthly start / month end ----

@spec("mlp_ms_revin", ("MLP", "MS", 6, 12, "revin", "minmax", "MAE", "-"))
def _mlp_ms_revin(name):
    freq = "MS"
    tr = train_set([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 100, 12)
    models = [MLP(h=6, input_size=12, hidden_size=24, num_layers=2, scaler_type="revin",
                  **trainer_kwargs(12, 40))]
    return models, dict(freq=freq, local_scaler_type="minmax"), tr, None, std_cases(name, tr, freq, 12, 100, 12)


@spec("dlinear_me_air", ("DLinear(moving_avg_window=13)", "ME", 12, 24, "standard", "boxcox", "MAE", "-"))
def _dlinear_me_air(name):
    freq = "ME"
    tr = concat(air_series("airline1"), air_series("airline2", scale=0.5, shift=20.0, last_n=120),
                air_series("airline3", scale=1.7, shift=-40.0, last_n=100))
    models = [DLinear(h=12, input_size=24, moving_avg_window=13, scaler_type="standard",
                      **trainer_kwargs(13, 50, lr=1e-2))]
    a = concat(tail_n(tr, "airline1", 60), tail_n(tr, "airline2", 30), tail_n(tr, "airline3", 24))
    b = concat(
        air_series("airline1", scale=3.0, shift=100.0, last_n=48),
        air_series("airline2", scale=0.1, shift=5.0).iloc[20:60],  # an older window, ends mid-history
        air_series("tiny", scale=0.02, shift=1.0, last_n=15),  # shorter than input_size
    )
    cases = [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None),
             offanchor_case(name, freq, 24, 130, 12, "2024-06-30", "2024-06-15", level=300.0)]
    return models, dict(freq=freq, local_scaler_type="boxcox"), tr, None, cases


@spec("mlp_me_mq", ("MLP", "ME", 12, 24, "robust", "standard", "MQLoss(level=[80, 90])", "-"))
def _mlp_me_mq(name):
    freq = "ME"
    tr = concat(air_series("airline1"), air_series("airline2", scale=0.6, shift=30.0, last_n=110))
    models = [MLP(h=12, input_size=24, hidden_size=32, num_layers=2, scaler_type="robust",
                  loss=MQLoss(level=[80, 90]), **trainer_kwargs(14, 50))]
    a = concat(tail_n(tr, "airline1", 72), tail_n(tr, "airline2", 36))
    b = concat(air_series("airline1", scale=2.0, shift=-50.0).iloc[10:70],
               air_series("airline2", scale=0.5, last_n=18))
    cases = [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None)]
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


# ---- quarterly start ----

@spec("nlinear_qs_invariant", ("NLinear", "QS (QS-JAN)", 4, 8, "invariant", "standard", "MAE", "-"))
def _nlinear_qs_invariant(name):
    freq = "QS"
    tr = train_set([("s1", 60), ("s2", 48), ("s3", 40)], "2024-01-01", freq, 110, 4)
    models = [NLinear(h=4, input_size=8, scaler_type="invariant", **trainer_kwargs(15, 40, lr=1e-2))]
    cases = std_cases(name, tr, freq, 8, 110, 4, end_b="2025-07-01")
    cases.append(offanchor_case(name, freq, 8, 110, 4, "2024-04-01", "2024-05-15"))
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


# ---- custom aliases ----

@spec("mlp_air_columns", ("MLP", "ME", 12, 24, "standard", "-", "MAE", "-"))
def _mlp_air_columns(name):
    """Trained with id_col="airline", time_col="month", target_col="passengers"."""
    freq = "ME"
    tr = concat(air_series("a1"), air_series("a2", scale=1.4, shift=-20.0))
    models = [MLP(h=12, input_size=24, hidden_size=32, num_layers=2, scaler_type="standard",
                  **trainer_kwargs(3, 40))]
    cases = [(f"{name}__tail", concat(tail_n(tr, "a1", 36), tail_n(tr, "a2", 30)), None, None)]
    return models, dict(freq=freq, columns={"unique_id": "airline", "ds": "month", "y": "passengers"}), tr, None, cases


@spec("alias_ms", ("MLP(alias='mlp_fast') + NLinear(alias='Naive_lin')", "MS", 3, 12,
                   "MLP identity, NLinear revin", "-", "MAE", "-"))
def _alias_ms(name):
    freq = "MS"
    tr = train_set([("s1", 80), ("s2", 64), ("s3", 50)], "2024-05-01", freq, 120, 12)
    models = [
        MLP(h=3, input_size=12, hidden_size=16, num_layers=2, alias="mlp_fast", **trainer_kwargs(16, 30)),
        NLinear(h=3, input_size=12, scaler_type="revin", alias="Naive_lin", **trainer_kwargs(17, 30, lr=1e-2)),
    ]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 12, 120, 12)


# ---- integer ds ----

@spec("mlp_int_robust", ("MLP", "1 (integer ds)", 1, 7, "robust", "minmax", "MAE", "-"))
def _mlp_int_robust(name):
    freq = 1
    tr = train_set([("s1", 80), ("s2", 60), ("s3", 45)], 200, freq, 130, 5)
    models = [MLP(h=1, input_size=7, hidden_size=16, num_layers=2, scaler_type="robust",
                  **trainer_kwargs(18, 40))]
    cases = std_cases(name, tr, freq, 7, 130, 5, end_b=1000)
    # integer unique_ids, series ending at different integer ds
    c = concat(
        make_series(1, 57, 20, freq, 131, level=40.0, period=5),
        make_series(2, 300, 9, freq, 132, level=400.0, trend=-2.0, amp=30.0, period=5),
        make_series(10, 12, 5, freq, 133, level=7.0, trend=0.1, amp=1.0, period=5, noise=0.2),
    )
    cases.append((f"{name}__int_ids", c, None, None))
    return models, dict(freq=freq, local_scaler_type="minmax"), tr, None, cases


# ---- exogenous ----

def exog_frame(uids_lens, end, freq, h, seed, with_hist=True):
    """df with futr (promo, wave) + hist (temp) exog; futr_df of h rows; static_df."""
    rng = np.random.default_rng(seed)
    hist, futr, stat = [], [], []
    for i, (u, n) in enumerate(uids_lens):
        ds = pd.date_range(end=pd.Timestamp(end), periods=n + h, freq=freq)
        t = np.arange(n + h)
        promo = (rng.random(n + h) < 0.2).astype(np.float64)
        wave = np.round(np.cos(2 * np.pi * t / 7), 3)
        temp = np.round(15 + 8 * np.sin(2 * np.pi * t / 30 + i) + rng.normal(0, 1, n + h), 3)
        size = float(1 + i)
        y = (50 * size + 0.3 * t + 6 * np.sin(2 * np.pi * t / 7) + 15 * promo + 4 * wave + 0.5 * temp
             + rng.normal(0, 1.5, n + h))
        y = np.round(np.maximum(y, 1.0), 3)
        d = pd.DataFrame({"unique_id": u, "ds": ds, "y": y, "promo": promo, "wave": wave, "temp": temp})
        hist.append(d.iloc[:n])
        futr.append(d.iloc[n:][["unique_id", "ds", "promo", "wave"]])
        stat.append({"unique_id": u, "size": size, "region": float(i % 2)})
    df = concat(*hist)
    if not with_hist:
        df = df.drop(columns=["temp"])
    return df, concat(*futr), pd.DataFrame(stat)


@spec("mlp_exog", ("MLP", "D", 7, 14, "standard", "standard",
                   "MAE", "futr: promo, wave; hist: temp; stat: size, region"))
def _mlp_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 140)
    models = [MLP(h=7, input_size=14, hidden_size=32, num_layers=2, scaler_type="standard",
                  futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                  **trainer_kwargs(19, 50))]
    a_df, a_fu, a_st = exog_frame([("s1", 40), ("s2", 20), ("s3", 10)], "2024-05-20", freq, 7, 141)
    b_df, b_fu, b_st = exog_frame([("s1", 30), ("s2", 9)], "2024-08-31", freq, 7, 142)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5]
    cases = [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("mlp_exog_static", ("MLP", "D", 7, 14, "identity", "robust (+ local_static_scaler_type=standard)",
                          "MAE", "futr: promo, wave; stat: size, region"))
def _mlp_exog_static(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 100), ("s2", 90), ("s3", 80)], "2024-04-30", freq, 7, 150, with_hist=False)
    models = [MLP(h=7, input_size=14, hidden_size=16, num_layers=2, scaler_type="identity",
                  futr_exog_list=["promo", "wave"], stat_exog_list=["size", "region"],
                  **trainer_kwargs(20, 40))]
    a_df, a_fu, a_st = exog_frame([("s1", 30), ("s2", 15), ("s3", 11)], "2024-05-10", freq, 7, 151,
                                  with_hist=False)
    b_df, b_fu, b_st = exog_frame([("s1", 25), ("s2", 20)], "2024-07-31", freq, 7, 152, with_hist=False)
    b_st["size"] = [7.0, 2.0]
    cases = [(f"{name}__tail", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]
    return (models, dict(freq=freq, local_scaler_type="robust", local_static_scaler_type="standard"),
            tr, st, cases)


# --------------------------------------------------------------------------
# Driver
# --------------------------------------------------------------------------

def _read_safetensors(path):
    with open(path, "rb") as f:
        data = f.read()
    n = int.from_bytes(data[:8], "little")
    return json.loads(data[8:8 + n]), data[8 + n:]


def same_bundle(new_dir, old_dir):
    """Same files, same JSON bytes, same safetensors header (as a dict) and data."""
    if not os.path.isdir(old_dir):
        return False
    names = sorted(os.listdir(new_dir))
    if names != sorted(os.listdir(old_dir)):
        return False
    for fn in names:
        a, b = os.path.join(new_dir, fn), os.path.join(old_dir, fn)
        if fn.endswith(".safetensors"):
            if _read_safetensors(a) != _read_safetensors(b):
                return False
        else:
            with open(a, "rb") as fa, open(b, "rb") as fb:
                if fa.read() != fb.read():
                    return False
    return True


def case_request(i, df, futr_df, st_df, freq):
    """The /predict body of a spec's i-th case: its frames as shuffled records."""
    request = {"df": to_records(df, freq, shuffle_seed=1000 + i)}
    if futr_df is not None:
        request["futr_df"] = to_records(futr_df, freq, shuffle_seed=2000 + i)
    if st_df is not None:
        request["static_df"] = to_records(st_df, freq)
    return request


def rename_records(records, mapping):
    """Records with keys renamed, in the same key order."""
    return [{mapping.get(k, k): v for k, v in r.items()} for r in records]


def build_bundle(name, out):
    models, nf_kwargs, train_df, static_df, cases = SPECS[name](name)
    # A spec may train under other column names: {"unique_id": id_col, "ds":
    # time_col, "y": target_col}. Specs build frames with the default names;
    # requests, predict and expectations use the bundle's.
    columns = nf_kwargs.pop("columns", {})
    # fit() keyword arguments (e.g. prediction_intervals) ride along as "fit".
    fit_kwargs = nf_kwargs.pop("fit", {})
    back = {v: k for k, v in columns.items()}
    freq = nf_kwargs["freq"]
    nf = NeuralForecast(models=models, **nf_kwargs)
    fit_names = {f"{c}_col": columns[d] for c, d in (("id", "unique_id"), ("time", "ds"), ("target", "y"))
                 if d in columns}
    nf.fit(df=train_df.rename(columns=columns),
           static_df=None if static_df is None else static_df.rename(columns=columns), **fit_names, **fit_kwargs)
    bdir = os.path.join(out, "bundles", name)
    os.makedirs(os.path.dirname(bdir), exist_ok=True)
    fresh = os.path.join(_TMP_ROOT, "bundles", name)
    nf.save(fresh, overwrite=True, save_dataset=False)
    if same_bundle(fresh, bdir):
        # safetensors writes its __metadata__ map in (Rust) hash order, so two
        # saves of identical weights differ in bytes; keep the existing files
        # when the content is identical so regeneration does not churn hashes.
        shutil.rmtree(fresh)
    else:
        shutil.rmtree(bdir, ignore_errors=True)
        shutil.move(fresh, bdir)

    nf2 = NeuralForecast.load(bdir)
    case_dir = os.path.join(out, "cases")
    os.makedirs(case_dir, exist_ok=True)
    written = []
    for i, (cname, df, futr_df, st_df, *more) in enumerate(cases):
        # A fifth element holds predict() arguments: level, quantiles, or h
        # below the bundle's (NeuralForecast refuses that; the contract's
        # answer is the first h steps, taken here from its full forecast).
        extra = more[0] if more else {}
        request = case_request(i, df, futr_df, st_df, freq)
        request.update(extra)
        kwargs = dict(df=records_to_df(request["df"], freq).rename(columns=columns))
        if "futr_df" in request:
            kwargs["futr_df"] = records_to_df(request["futr_df"], freq).rename(columns=columns)
        if "static_df" in request:
            kwargs["static_df"] = records_to_df(request["static_df"], freq).rename(columns=columns)
        fc = nf2.predict(**kwargs, **{k: v for k, v in extra.items() if k != "h"}).rename(columns=back)
        if "h" in extra:
            fc = fc.sort_values(["unique_id", "ds"]).groupby("unique_id", sort=False).head(extra["h"])
        request = {k: (rename_records(v, columns) if k in ("df", "futr_df", "static_df") else v)
                   for k, v in request.items()}
        case = {"bundle": name, "request": request,
                "expected": {"model": name, "predictions": rename_records(predictions_to_records(fc), columns)}}
        dump_case(os.path.join(case_dir, cname + ".json"), case)
        written.append(cname)
    return written


def load_zoo_specs():
    """Further bundle specs live one file per model family in python/fixture_specs/
    (each registers with @make_fixtures.spec), so families can grow independently."""
    sys.modules.setdefault("make_fixtures", sys.modules[__name__])
    d = os.path.join(os.path.dirname(os.path.abspath(__file__)), "fixture_specs")
    if not os.path.isdir(d):
        return
    for f in sorted(os.listdir(d)):
        if f.endswith(".py") and not f.startswith("_"):
            importlib.import_module(f"fixture_specs.{f[:-3]}")


README_TABLE_HEAD = "| bundle | models | freq | h | input_size | scaler_type | local_scaler_type | loss | exog |"


def write_readme_table(out):
    """Rewrites the bundle table of tests/fixtures/README.md from the specs' rows."""
    path = os.path.join(out, "README.md")
    if not os.path.isfile(path):
        return
    text = open(path).read().splitlines()
    try:
        start = text.index(README_TABLE_HEAD)
    except ValueError:
        return
    end = start + 2
    while end < len(text) and text[end].startswith("|"):
        end += 1
    rows = [f"| `{name}` | " + " | ".join(str(c) for c in row) + " |" for name, row in README_ROWS.items()]
    text[start:end] = [README_TABLE_HEAD, "|" + "---|" * 9] + rows
    open(path, "w").write("\n".join(text) + "\n")


def main(argv=None):
    load_zoo_specs()
    ap = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                  "tests", "fixtures"))
    ap.add_argument("--only", action="append", default=[],
                    help="bundle name(s), comma separated or repeated")
    ap.add_argument("--list", action="store_true", help="list bundle names and exit")
    args = ap.parse_args(argv)
    if args.list:
        print("\n".join(SPECS))
        return 0
    names = [n for o in args.only for n in o.split(",") if n] or list(SPECS)
    unknown = [n for n in names if n not in SPECS]
    if unknown:
        ap.error(f"unknown bundle(s): {unknown}; known: {list(SPECS)}")
    out = os.path.abspath(args.out)
    if not args.only:
        # Full run: drop bundles/cases no spec produces any more.
        bdir = os.path.join(out, "bundles")
        if os.path.isdir(bdir):
            for d in os.listdir(bdir):
                if d not in SPECS:
                    shutil.rmtree(os.path.join(bdir, d))
        shutil.rmtree(os.path.join(out, "cases"), ignore_errors=True)
    else:
        case_dir = os.path.join(out, "cases")
        if os.path.isdir(case_dir):
            for n in names:
                for f in os.listdir(case_dir):
                    if f.startswith(n + "__"):
                        os.remove(os.path.join(case_dir, f))
    global _TMP_ROOT
    _TMP_ROOT = tempfile.mkdtemp(prefix="nd-fixtures-")
    t0 = time.time()
    cwd = os.getcwd()
    os.chdir(_TMP_ROOT)
    try:
        for n in names:
            t = time.time()
            cases = build_bundle(n, out)
            print(f"{n}: {len(cases)} cases ({time.time() - t:.1f}s)", flush=True)
    finally:
        os.chdir(cwd)
        shutil.rmtree(_TMP_ROOT, ignore_errors=True)
    if not args.only:
        write_readme_table(out)
    print(f"done: {len(names)} bundles in {time.time() - t0:.1f}s -> {out}")
    return 0


if __name__ == "__main__":
    sys.exit(main())
