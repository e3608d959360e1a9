"""SOFTS, SOFTSSharp, KAN, TimeMixer, TimeXer, RMoK, XLinear, StemGNN, TimesNet and DeepNPTS bundles.

The multivariate classes (SOFTS, TimeMixer, TimeXer, RMoK, XLinear, StemGNN)
are trained on exactly three series (s1, s2, s3: ``n_series=3``) and every
case holds exactly those three (see mixers.py). The univariate ones (KAN,
TimesNet, DeepNPTS) get the usual tails and rescaled series; TimesNet picks
its periods from the FFT of the whole batch, so its cases mix series.
"""

from __future__ import annotations

import numpy as np
from make_fixtures import (
    MSE,
    MQLoss,
    exog_frame,
    spec,
    std_cases,
    train_set,
    trainer_kwargs,
)
from neuralforecast.models import KAN, SOFTS, DeepNPTS, RMoK, SOFTSSharp, StemGNN, TimeMixer, TimesNet, TimeXer, XLinear

from fixture_specs.mixers import UIDS, mv_cases, mv_exog_cases

EXOG_ROW = "futr: promo, wave; hist: temp; stat: size, region"


# ---- SOFTS ----

@spec("softs_h_norm", ("SOFTS(n_series=3, hidden_size=16, d_core=8, e_layers=2, d_ff=16)", "h", 12, 24,
                       "identity", "standard", "MAE", "-"))
def _softs_h_norm(name):
    freq = "h"
    tr = train_set([(u, 200) for u in UIDS], "2024-01-10 23:00:00", freq, 500, 24)
    models = [SOFTS(h=12, input_size=24, n_series=3, hidden_size=16, d_core=8, e_layers=2, d_ff=16,
                    scaler_type="identity", **trainer_kwargs(51, 40))]
    cases = mv_cases(name, tr, freq, 24, 500, 24)
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


@spec("softs_d_mq", ("SOFTS(n_series=3, hidden_size=8, d_core=4, e_layers=1, d_ff=16, use_norm=False)", "D", 7,
                     14, "robust", "-", "MQLoss(level=[80, 90])", "-"))
def _softs_d_mq(name):
    freq = "D"
    tr = train_set([(u, 100) for u in UIDS], "2024-04-30", freq, 510, 7)
    models = [SOFTS(h=7, input_size=14, n_series=3, hidden_size=8, d_core=4, e_layers=1, d_ff=16, use_norm=False,
                    scaler_type="robust", loss=MQLoss(level=[80, 90]), **trainer_kwargs(52, 40))]
    cases = mv_cases(name, tr, freq, 14, 510, 7, ends=("2024-06-30", "2024-03-31", "2025-01-01"))
    return models, dict(freq=freq), tr, None, cases


@spec("softssharp_h_norm", ("SOFTSSharp(n_series=3, hidden_size=4, d_core=4, e_layers=2, d_ff=8)", "h", 12,
                            24, "identity", "-", "MAE", "-"))
def _softssharp_h_norm(name):
    freq = "h"
    tr = train_set([(u, 200) for u in UIDS], "2024-01-10 23:00:00", freq, 530, 24)
    models = [SOFTSSharp(h=12, input_size=24, n_series=3, hidden_size=4, d_core=4, e_layers=2, d_ff=8,
                         scaler_type="identity", **trainer_kwargs(53, 40))]
    cases = mv_cases(name, tr, freq, 24, 530, 24)
    return models, dict(freq=freq), tr, None, cases


@spec("softssharp_d_mq", ("SOFTSSharp(n_series=3, hidden_size=8, d_core=4, e_layers=1, d_ff=16, use_norm=False, "
                          "pe_keep_prob=0.8)", "D", 7, 14, "standard", "-", "MQLoss(level=[80, 90])", "-"))
def _softssharp_d_mq(name):
    freq = "D"
    tr = train_set([(u, 100) for u in UIDS], "2024-04-30", freq, 540, 7)
    models = [SOFTSSharp(h=7, input_size=14, n_series=3, hidden_size=8, d_core=4, e_layers=1, d_ff=16,
                         use_norm=False, pe_keep_prob=0.8, scaler_type="standard", loss=MQLoss(level=[80, 90]),
                         **trainer_kwargs(54, 40))]
    cases = mv_cases(name, tr, freq, 14, 540, 7, ends=("2024-06-30", "2024-03-31", "2025-01-01"))
    return models, dict(freq=freq), tr, None, cases


# ---- KAN ----

def uv_exog_cases(name, freq, h, seed, end_a, end_b, with_hist=True):
    """Mixed lengths (one shorter than the window), then a rescaled window
    with other static values (as recurrent.py's ``exog_cases``)."""
    a_df, a_fu, a_st = exog_frame([("s1", 40), ("s2", 20), ("s3", 10)], end_a, freq, h, seed, with_hist=with_hist)
    b_df, b_fu, b_st = exog_frame([("s1", 30), ("s2", 9)], end_b, freq, h, seed + 1, with_hist=with_hist)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5]
    return [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]


@spec("kan_d_exog", ("KAN(hidden_size=16, n_hidden_layers=1)", "D", 7, 14, "standard", "standard", "MAE", EXOG_ROW))
def _kan_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 520)
    models = [KAN(h=7, input_size=14, hidden_size=16, n_hidden_layers=1, scaler_type="standard",
                  futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                  **trainer_kwargs(53, 40))]
    cases = uv_exog_cases(name, freq, 7, 521, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("kan_ms_mq", ("KAN(hidden_size=[12, 8], grid_size=4, spline_order=2, grid_range=[-2, 2])", "MS", 6, 12,
                    "robust", "-", "MQLoss(level=[80])", "-"))
def _kan_ms_mq(name):
    freq = "MS"
    tr = train_set([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 530, 12)
    models = [KAN(h=6, input_size=12, hidden_size=[12, 8], n_hidden_layers=2, grid_size=4, spline_order=2,
                  grid_range=[-2, 2], scaler_type="robust", loss=MQLoss(level=[80]), **trainer_kwargs(54, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 12, 530, 12)


# ---- TimeMixer ----

@spec("timemixer_h_movavg", ("TimeMixer(n_series=3, d_model=4, d_ff=8, e_layers=2, moving_avg=5, "
                             "down_sampling_layers=2)", "h", 12, 16, "identity", "standard", "MAE", "-"))
def _timemixer_h_movavg(name):
    freq = "h"
    tr = train_set([(u, 200) for u in UIDS], "2024-01-10 23:00:00", freq, 540, 24)
    models = [TimeMixer(h=12, input_size=16, n_series=3, d_model=4, d_ff=8, e_layers=2, moving_avg=5,
                        down_sampling_layers=2, down_sampling_window=2, scaler_type="identity",
                        **trainer_kwargs(55, 40))]
    cases = mv_cases(name, tr, freq, 16, 540, 24)
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


@spec("timemixer_d_dft_mq", ("TimeMixer(n_series=3, d_model=4, channel_independence=1, decomp_method='dft_decomp', "
                             "top_k=2, down_sampling_method='max', use_norm=False)", "D", 7, 16, "standard", "-",
                             "MQLoss(level=[80])", "-"))
def _timemixer_d_dft_mq(name):
    freq = "D"
    tr = train_set([(u, 100) for u in UIDS], "2024-04-30", freq, 550, 7)
    models = [TimeMixer(h=7, input_size=16, n_series=3, d_model=4, d_ff=8, e_layers=1, top_k=2,
                        decomp_method="dft_decomp", moving_avg=3, channel_independence=1, down_sampling_layers=1,
                        down_sampling_window=2, down_sampling_method="max", use_norm=False, scaler_type="standard",
                        loss=MQLoss(level=[80]), **trainer_kwargs(56, 40))]
    cases = mv_cases(name, tr, freq, 16, 550, 7, ends=("2024-06-30", "2024-03-31", "2025-01-01"))
    return models, dict(freq=freq), tr, None, cases


# ---- TimeXer (its saved 5000-row positional table keeps hidden_size small) ----

@spec("timexer_d_exog", ("TimeXer(n_series=3, patch_len=7, hidden_size=4, n_heads=2, e_layers=2, d_ff=8)", "D", 7,
                         14, "standard", "standard", "MAE", "hist: temp; stat: size, region"))
def _timexer_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([(u, 110) for u in UIDS], "2024-04-30", freq, 7, 560)
    tr = tr.drop(columns=["promo", "wave"])
    models = [TimeXer(h=7, input_size=14, n_series=3, patch_len=7, hidden_size=4, n_heads=2, e_layers=2, d_ff=8,
                      scaler_type="standard", hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                      **trainer_kwargs(57, 40))]
    cases = mv_exog_cases(name, freq, 7, 561, 14, "2024-05-20", "2024-08-31")
    cases = [(c, df.drop(columns=["promo", "wave"]), None, st_) for c, df, _, st_ in cases]
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("timexer_h_mq", ("TimeXer(n_series=3, patch_len=6, hidden_size=4, n_heads=1, e_layers=1, d_ff=8, "
                       "use_norm=False)", "h", 12, 24, "robust", "-", "MQLoss(level=[80])", "-"))
def _timexer_h_mq(name):
    freq = "h"
    tr = train_set([(u, 200) for u in UIDS], "2024-01-10 23:00:00", freq, 570, 24)
    models = [TimeXer(h=12, input_size=24, n_series=3, patch_len=6, hidden_size=4, n_heads=1, e_layers=1, d_ff=8,
                      use_norm=False, scaler_type="robust", loss=MQLoss(level=[80]), **trainer_kwargs(58, 40))]
    cases = mv_cases(name, tr, freq, 24, 570, 24)
    return models, dict(freq=freq), tr, None, cases


# ---- RMoK ----

@spec("rmok_d_mexican", ("RMoK(n_series=3, taylor_order=3, jacobi_degree=4)", "D", 7, 14, "standard", "standard",
                         "MAE", "-"))
def _rmok_d_mexican(name):
    freq = "D"
    tr = train_set([(u, 100) for u in UIDS], "2024-04-30", freq, 580, 7)
    models = [RMoK(h=7, input_size=14, n_series=3, taylor_order=3, jacobi_degree=4, scaler_type="standard",
                   **trainer_kwargs(59, 40))]
    cases = mv_cases(name, tr, freq, 14, 580, 7)
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


@spec("rmok_w_wavelets_mq", ("RMoK(n_series=3, taylor_order=5, jacobi_degree=6, wavelet_function='meyer', "
                             "revin_affine=False)", "W (W-SUN)", 4, 12, "identity", "-", "MQLoss(level=[80])", "-"))
def _rmok_w_wavelets_mq(name):
    freq = "W"
    tr = train_set([(u, 90) for u in UIDS], "2024-06-30", freq, 590, 13)
    models = [RMoK(h=4, input_size=12, n_series=3, taylor_order=5, jacobi_degree=6, wavelet_function="meyer",
                   revin_affine=False, scaler_type="identity", loss=MQLoss(level=[80]), **trainer_kwargs(60, 40))]
    cases = mv_cases(name, tr, freq, 12, 590, 13, ends=("2024-09-01", "2024-03-31", "2025-01-05"))
    return models, dict(freq=freq), tr, None, cases


# ---- XLinear ----

@spec("xlinear_d_exog", ("XLinear(n_series=3, hidden_size=16, temporal_ff=16, channel_ff=6)", "D", 7, 14,
                         "standard", "standard", "MAE", EXOG_ROW))
def _xlinear_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([(u, 110) for u in UIDS], "2024-04-30", freq, 7, 600)
    models = [XLinear(h=7, input_size=14, n_series=3, hidden_size=16, temporal_ff=16, channel_ff=6,
                      scaler_type="standard", futr_exog_list=["promo", "wave"], hist_exog_list=["temp"],
                      stat_exog_list=["size", "region"], **trainer_kwargs(61, 40))]
    cases = mv_exog_cases(name, freq, 7, 601, 14, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("xlinear_ms_mq", ("XLinear(n_series=3, hidden_size=8, temporal_ff=8, channel_ff=3, use_norm=False)", "MS", 6,
                        12, "robust", "-", "MQLoss(level=[80, 90])", "-"))
def _xlinear_ms_mq(name):
    freq = "MS"
    tr = train_set([(u, 72) for u in UIDS], "2023-12-01", freq, 610, 12)
    models = [XLinear(h=6, input_size=12, n_series=3, hidden_size=8, temporal_ff=8, channel_ff=3, use_norm=False,
                      scaler_type="robust", loss=MQLoss(level=[80, 90]), **trainer_kwargs(62, 40))]
    cases = mv_cases(name, tr, freq, 12, 610, 12, ends=("2024-06-01", "2023-09-01", "2025-01-01"))
    return models, dict(freq=freq), tr, None, cases


# ---- StemGNN ----

@spec("stemgnn_d_robust", ("StemGNN(n_series=3, multi_layer=2)", "D", 7, 4, "robust", "standard", "MAE", "-"))
def _stemgnn_d_robust(name):
    freq = "D"
    tr = train_set([(u, 100) for u in UIDS], "2024-04-30", freq, 620, 7)
    models = [StemGNN(h=7, input_size=4, n_series=3, multi_layer=2, scaler_type="robust", **trainer_kwargs(63, 40))]
    cases = mv_cases(name, tr, freq, 4, 620, 7)
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


@spec("stemgnn_ms_mq", ("StemGNN(n_series=3, multi_layer=1, leaky_rate=0.1)", "MS", 6, 6, "standard", "-",
                        "MQLoss(level=[80])", "-"))
def _stemgnn_ms_mq(name):
    freq = "MS"
    tr = train_set([(u, 72) for u in UIDS], "2023-12-01", freq, 630, 12)
    models = [StemGNN(h=6, input_size=6, n_series=3, multi_layer=1, leaky_rate=0.1, scaler_type="standard",
                      loss=MQLoss(level=[80]), **trainer_kwargs(64, 40))]
    cases = mv_cases(name, tr, freq, 6, 630, 12, ends=("2024-06-01", "2023-09-01", "2025-01-01"))
    return models, dict(freq=freq), tr, None, cases


# ---- TimesNet (periods come from the whole batch: batch_size=2 splits the 3 series) ----

@spec("timesnet_d_batches", ("TimesNet(hidden_size=4, conv_hidden_size=8, top_k=3, num_kernels=3, batch_size=2)",
                             "D", 7, 14, "standard", "-", "MAE", "-"))
def _timesnet_d_batches(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 640, 7)
    models = [TimesNet(h=7, input_size=14, hidden_size=4, conv_hidden_size=8, top_k=3, num_kernels=3,
                       encoder_layers=2, batch_size=2, scaler_type="standard", **trainer_kwargs(65, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 640, 7)


@spec("timesnet_h_futr_mq", ("TimesNet(hidden_size=4, conv_hidden_size=4, top_k=2, num_kernels=2, "
                             "encoder_layers=1)", "h", 12, 24, "robust", "standard", "MQLoss(level=[80])",
                             "futr: promo, wave"))
def _timesnet_h_futr_mq(name):
    freq = "h"
    tr, _, _ = exog_frame([("s1", 200), ("s2", 160), ("s3", 140)], "2024-02-10 23:00:00", freq, 12, 650,
                          with_hist=False)
    models = [TimesNet(h=12, input_size=24, hidden_size=4, conv_hidden_size=4, top_k=2, num_kernels=2,
                       encoder_layers=1, scaler_type="robust", loss=MQLoss(level=[80]),
                       futr_exog_list=["promo", "wave"], **trainer_kwargs(66, 40))]
    cases = [(c, df, fu, None) for c, df, fu, _ in
             uv_exog_cases(name, freq, 12, 651, "2024-02-20 05:00:00", "2024-05-01 17:00:00", with_hist=False)]
    return models, dict(freq=freq, local_scaler_type="standard"), tr, None, cases


# ---- DeepNPTS (point losses only: its forecast is a softmax-weighted mean of the window) ----

@spec("deepnpts_d_exog", ("DeepNPTS(hidden_size=16, n_layers=2)", "D", 7, 14, "standard", "standard", "MAE",
                          EXOG_ROW))
def _deepnpts_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 660)
    models = [DeepNPTS(h=7, input_size=14, hidden_size=16, n_layers=2, scaler_type="standard",
                       futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                       **trainer_kwargs(67, 40))]
    cases = uv_exog_cases(name, freq, 7, 661, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("deepnpts_w_nobn", ("DeepNPTS(hidden_size=8, n_layers=1, batch_norm=False, dropout=0)", "W (W-SUN)", 4, 12,
                          "robust", "-", "MSE", "-"))
def _deepnpts_w_nobn(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 670, 13)
    models = [DeepNPTS(h=4, input_size=12, hidden_size=8, n_layers=1, batch_norm=False, dropout=0.0,
                       scaler_type="robust", loss=MSE(), valid_loss=MSE(), **trainer_kwargs(68, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 12, 670, 13)
