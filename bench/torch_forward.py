"""PyTorch's own forward pass on the same bundles and batch shapes as the
criterion bench (inference/benches/forward.rs), single-threaded like the Rust
forward. Prints microseconds per forward; `make bench` records them in
BENCHMARKS.md beside the Rust numbers."""

import logging
import sys
import time
import warnings
from pathlib import Path

warnings.filterwarnings("ignore")
logging.disable(logging.WARNING)

import torch  # noqa: E402
from neuralforecast import NeuralForecast  # noqa: E402

ROOT = Path(__file__).resolve().parent.parent / "tests" / "fixtures" / "bundles"
BUNDLES = ["mlp_d_standard", "dlinear_d_identity", "nlinear_d_robust", "mlp_exog", "mlp_me_mq"]


def windows(model, series: int):
    l, h = model.input_size, model.h
    val = lambda i: ((i * 7919) % 1000) / 500.0 - 1.0  # noqa: E731  same values as the Rust bench
    y = torch.tensor([[val(i * l + t) for t in range(l)] for i in range(series)], dtype=torch.float32)
    b = {"insample_y": y.unsqueeze(-1), "insample_mask": torch.ones(series, l), "hist_exog": None, "futr_exog": None, "stat_exog": None}
    if model.hist_exog_list:
        b["hist_exog"] = torch.rand(series, l, len(model.hist_exog_list))
    if model.futr_exog_list:
        b["futr_exog"] = torch.rand(series, l + h, len(model.futr_exog_list))
    if model.stat_exog_list:
        b["stat_exog"] = torch.rand(series, len(model.stat_exog_list))
    return b


def time_forward(model, batch, min_seconds=1.0):
    with torch.no_grad():
        for _ in range(50):
            model(batch)
        n, start = 0, time.perf_counter()
        while time.perf_counter() - start < min_seconds:
            for _ in range(100):
                model(batch)
            n += 100
        return (time.perf_counter() - start) / n * 1e6


def main() -> None:
    torch.set_num_threads(1)
    print("bundle,series,torch_us")
    for name in BUNDLES:
        model = NeuralForecast.load(str(ROOT / name)).models[0].eval()
        for series in (1, 64):
            print(f"{name},{series},{time_forward(model, windows(model, series)):.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
