"""What `level=[80, 95]` costs over a point forecast, in NeuralForecast
itself: writes the bundles and request bodies the `intervals` group of
`cargo bench --bench forward` times (make bench), and prints nf.predict's
in-process times for the same requests.

Bundles (OUT/bundles/<name>): an MLP (h=7, input_size=14) fitted with
conformal prediction intervals (n_windows=3) on 1 and on 64 series, for each
method (NeuralForecast pairs the conformity scores with the request's series
by position, so a 64-series request needs a bundle calibrated on 64 series),
and an MLP trained with IQLoss (any series count). Requests
(OUT/requests/<name>.json): the last 42 points of each training series.

    python bench/intervals.py [--out bench/results/intervals] [--runs 30]
"""
import argparse
import json
import logging
import os
import shutil
import statistics
import sys
import time
import warnings
from pathlib import Path

os.environ.setdefault("CUDA_VISIBLE_DEVICES", "")
os.environ.setdefault("OMP_NUM_THREADS", "1")

import numpy as np  # noqa: E402
import pandas as pd  # noqa: E402
import torch  # noqa: E402

torch.set_num_threads(1)
warnings.filterwarnings("ignore")
for _name in ("lightning", "lightning.pytorch", "pytorch_lightning", "lightning_fabric"):
    logging.getLogger(_name).setLevel(logging.ERROR)

from neuralforecast import NeuralForecast  # noqa: E402
from neuralforecast.losses.pytorch import IQLoss  # noqa: E402
from neuralforecast.models import MLP  # noqa: E402
from neuralforecast.utils import PredictionIntervals  # noqa: E402

ROOT = Path(__file__).resolve().parents[1]
LEVEL = [80, 95]


def series(n: int, length: int = 120, seed: int = 0) -> pd.DataFrame:
    rng = np.random.default_rng(seed)
    ds = pd.date_range(end="2024-06-30", periods=length, freq="D")
    t = np.arange(length)
    return pd.concat([
        pd.DataFrame({"unique_id": f"s{i:03d}", "ds": ds,
                      "y": 100 + 5 * i + 0.3 * t + 10 * np.sin(2 * np.pi * t / 7 + i) + rng.normal(0, 2, length)})
        for i in range(n)
    ], ignore_index=True)


def mlp(**kw) -> MLP:
    return MLP(h=7, input_size=14, hidden_size=32, num_layers=2, scaler_type="standard", max_steps=30,
               random_seed=1, enable_progress_bar=False, enable_model_summary=False, logger=False, **kw)


def body(df: pd.DataFrame) -> dict:
    tail = df.groupby("unique_id").tail(42)
    return {"df": [{"unique_id": r.unique_id, "ds": r.ds.strftime("%Y-%m-%d"), "y": round(float(r.y), 4)}
                   for r in tail.itertuples()]}


def timed(fn, runs: int) -> float:
    fn()  # warm
    samples = []
    for _ in range(runs):
        t0 = time.perf_counter()
        fn()
        samples.append(time.perf_counter() - t0)
    return statistics.median(samples) * 1e3


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=ROOT / "bench/results/intervals")
    ap.add_argument("--runs", type=int, default=30)
    args = ap.parse_args()
    shutil.rmtree(args.out, ignore_errors=True)
    (args.out / "bundles").mkdir(parents=True)
    (args.out / "requests").mkdir(parents=True)
    specs = []
    for n in (1, 64):
        df = series(n)
        for method in ("conformal_error", "conformal_distribution"):
            specs.append((f"conformal_{method.split('_')[1]}_{n}", df,
                          [mlp()], {"prediction_intervals": PredictionIntervals(n_windows=3, method=method)}))
        specs.append((f"iqloss_{n}", df, [mlp(loss=IQLoss(), valid_loss=IQLoss())], {}))
    print("| bundle | series | nf.predict point ms | nf.predict level=[80,95] ms | extra |")
    print("|---|---:|---:|---:|---:|")
    for name, df, models, fit in specs:
        nf = NeuralForecast(models=models, freq="D")
        nf.fit(df, **fit)
        nf.save(str(args.out / "bundles" / name), overwrite=True, save_dataset=False)
        req = body(df)
        (args.out / "requests" / f"{name}.json").write_text(json.dumps(req))
        frame = pd.DataFrame(req["df"]).assign(ds=lambda d: pd.to_datetime(d["ds"]))
        loaded = NeuralForecast.load(str(args.out / "bundles" / name))
        point = timed(lambda nf=loaded, f=frame: nf.predict(df=f), args.runs)
        level = timed(lambda nf=loaded, f=frame: nf.predict(df=f, level=LEVEL), args.runs)
        print(f"| {name} | {df['unique_id'].nunique()} | {point:.2f} | {level:.2f} | {level - point:+.2f} |")
    return 0


if __name__ == "__main__":
    sys.exit(main())
