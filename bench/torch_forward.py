"""PyTorch's own forward pass on the same bundles and batch shapes as the
criterion bench (inference/forecast/benches/forward.rs), single-threaded like the Rust
forward. Prints microseconds per forward; `make bench` records them in
BENCHMARKS.md beside the Rust numbers. Bundle names as arguments pick a subset."""

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
BUNDLES = ["mlp_d_standard", "dlinear_d_identity", "nlinear_d_robust", "mlp_exog", "mlp_me_mq",
           "tide_d_standard", "tide_h_exog", "mlpmv_w_exog", "tsmixer_h_revin", "tsmixerx_d_exog",
           "itransformer_me_air", "itransformer_d_futr_mq",
           "nbeats_d_its", "nbeats_h_mq", "nbeatsx_d_exog", "nhits_h_max_linear", "nhits_d_avg_nearest_exog",
           "nhits_me_cubic",
           "rnn_d_direct", "rnn_h_relu_rec", "lstm_d_exog", "lstm_w_rec_mq", "gru_d_rec_exog", "gru_int_direct",
           "dilated_rnn_d_exog", "dilated_rnn_ms_cells", "tcn_h_exog_mq", "bitcn_d_exog", "bitcn_ms_revin",
           "softs_h_norm", "softs_d_mq", "softssharp_h_norm", "softssharp_d_mq", "kan_d_exog", "kan_ms_mq",
           "timemixer_h_movavg", "timemixer_d_dft_mq",
           "timexer_d_exog", "timexer_h_mq", "rmok_d_mexican", "rmok_w_wavelets_mq", "xlinear_d_exog", "xlinear_ms_mq",
           "stemgnn_d_robust", "stemgnn_ms_mq", "timesnet_d_batches", "timesnet_h_futr_mq", "deepnpts_d_exog",
           "deepnpts_w_nobn",
           "tft_d_exog", "tft_h_gru_mq", "tft_ms_hist", "patchtst_d_revin", "patchtst_h_norevin_mq",
           "patchtst_w_affine",
           "vanilla_d_futr", "vanilla_ms_mq", "informer_d_futr", "informer_h_mq", "autoformer_d_futr",
           "autoformer_w_mq",
           "fedformer_d_futr", "fedformer_h_low_mq"]


def windows(model, series: int):
    n_in, h = model.input_size, model.h
    val = lambda i: ((i * 7919) % 1000) / 500.0 - 1.0  # noqa: E731  same values as the Rust bench
    y = torch.tensor([[val(i * n_in + t) for t in range(n_in)] for i in range(series)], dtype=torch.float32)
    if model.MULTIVARIATE:
        # One window holding the series: [1, L, N]; exog [1, C, L(+h), N]; static [N, S].
        b = {"insample_y": y.T.unsqueeze(0), "insample_mask": torch.ones(1, n_in, series),
             "hist_exog": None, "futr_exog": None, "stat_exog": None}
        if model.hist_exog_list:
            b["hist_exog"] = torch.rand(1, len(model.hist_exog_list), n_in, series)
        if model.futr_exog_list:
            b["futr_exog"] = torch.rand(1, len(model.futr_exog_list), n_in + h, series)
        if model.stat_exog_list:
            b["stat_exog"] = torch.rand(series, len(model.stat_exog_list))
        return b
    b = {"insample_y": y.unsqueeze(-1), "insample_mask": torch.ones(series, n_in), "hist_exog": None,
         "futr_exog": None, "stat_exog": None}
    if model.hist_exog_list:
        b["hist_exog"] = torch.rand(series, n_in, len(model.hist_exog_list))
    if model.futr_exog_list:
        b["futr_exog"] = torch.rand(series, n_in + h, len(model.futr_exog_list))
    if model.stat_exog_list:
        b["stat_exog"] = torch.rand(series, len(model.stat_exog_list))
    return b


def forward_of(model):
    """What predict runs per batch: one forward, or for a RECURRENT model
    (BaseModel._predict_step_recurrent_batch) the window then h - 1 one-step
    calls with the state kept, each fed the previous output (mean over outputs)."""
    if not model.RECURRENT:
        return model

    def rollout(b):
        h = model.h
        model.rnn_state, model.maintain_state, model.h = None, True, 1
        try:
            out = model(b)
            for tau in range(1, h):
                n = out.shape[0]
                step = {"insample_y": out.mean(-1, keepdim=True), "insample_mask": None, "stat_exog": b["stat_exog"],
                        "hist_exog": None if b["hist_exog"] is None else torch.zeros(n, 1, b["hist_exog"].shape[-1]),
                        "futr_exog": (None if b["futr_exog"] is None
                                      else b["futr_exog"][:, model.input_size + tau - 1:][:, :1])}
                out = model(step)
        finally:
            model.rnn_state, model.maintain_state, model.h = None, False, h
        return out

    return rollout


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
    for name in sys.argv[1:] or BUNDLES:
        model = NeuralForecast.load(str(ROOT / name)).models[0].eval()
        # A multivariate model takes one window of exactly its n_series series.
        for series in (model.n_series,) if model.MULTIVARIATE else (1, 64):
            print(f"{name},{series},{time_forward(forward_of(model), windows(model, series)):.2f}", flush=True)


if __name__ == "__main__":
    sys.exit(main())
