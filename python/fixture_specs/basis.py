"""NBEATS, NBEATSx and NHITS bundles (the basis-expansion family).

Small MLPs (mlp_units [[16, 16]] or two such layers) so each bundle stays well
under 100 KB. Together they cover: NBEATS identity/trend/seasonality stacks,
several blocks per stack, shared weights, n_basis 1-3 (only the
polynomial trend basis can be saved by NeuralForecast 3.3.0), a
PReLU activation (one learned slope per block), MQLoss; NBEATSx with hist,
futr and static exog, the 'exogenous' stack (futr + static, and static only),
dropout > 0 (shifts the Sequential keys), exclude_insample_y; NHITS with
MaxPool1d/AvgPool1d (kernels that do not divide input_size: ceil_mode),
linear/nearest/cubic interpolation, exog, dropout and MQLoss.
"""

from __future__ import annotations

import numpy as np
from make_fixtures import (
    MQLoss,
    air_series,
    concat,
    exog_frame,
    spec,
    std_cases,
    tail_n,
    train_set,
    trainer_kwargs,
)
from neuralforecast.models import NBEATS, NHITS, NBEATSx

SMALL = [[16, 16]]


def _exog_cases(name, freq, h, seed, end_a, end_b):
    """Short mixed lengths (one shorter than input_size), then a rescaled window."""
    a_df, a_fu, a_st = exog_frame([("s1", 40), ("s2", 20), ("s3", 10)], end_a, freq, h, seed)
    b_df, b_fu, b_st = exog_frame([("s1", 30), ("s2", 9)], end_b, freq, h, seed + 1)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5]
    return [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]


# ---- NBEATS ----

@spec("nbeats_d_its", ("NBEATS(identity, trend, seasonality; n_blocks=[1, 2, 1])", "D", 7, 14,
                       "standard", "-", "MAE", "-"))
def _nbeats_d_its(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 300, 7)
    models = [NBEATS(h=7, input_size=14, stack_types=["identity", "trend", "seasonality"], n_blocks=[1, 2, 1],
                     mlp_units=[[16, 16], [16, 16]], scaler_type="standard", **trainer_kwargs(31, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 300, 7)


@spec("nbeats_w_shared", ("NBEATS(trend n_basis=3, seasonality n_harmonics=1, identity; "
                          "n_blocks=[2, 2, 2], shared_weights, PReLU)", "W (W-SUN)", 4, 12,
                          "robust", "minmax", "MAE", "-"))
def _nbeats_w_shared(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 310, 13)
    models = [NBEATS(h=4, input_size=12, stack_types=["trend", "seasonality", "identity"], n_blocks=[2, 2, 2],
                     shared_weights=True, activation="PReLU", n_basis=3, n_harmonics=1,
                     mlp_units=SMALL, scaler_type="robust", **trainer_kwargs(32, 40))]
    return (models, dict(freq=freq, local_scaler_type="minmax"), tr, None,
            std_cases(name, tr, freq, 12, 310, 13, end_b="2025-01-05"))


@spec("nbeats_h_mq", ("NBEATS(identity, trend n_basis=1, seasonality n_harmonics=3)", "h", 12, 24,
                      "minmax", "standard", "MQLoss(level=[80])", "-"))
def _nbeats_h_mq(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 150), ("s3", 120)], "2024-01-10 23:00:00", freq, 320, 24)
    models = [NBEATS(h=12, input_size=24, stack_types=["identity", "trend", "seasonality"], n_blocks=[1, 1, 1],
                     n_basis=1, n_harmonics=3, mlp_units=SMALL, scaler_type="minmax",
                     loss=MQLoss(level=[80]), **trainer_kwargs(33, 40))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, None,
            std_cases(name, tr, freq, 24, 320, 24, end_b="2024-02-01 05:00:00"))


# ---- NBEATSx ----

@spec("nbeatsx_d_exog", ("NBEATSx(identity, trend, seasonality, exogenous; dropout_prob_theta=0.1, Tanh)",
                         "D", 7, 14, "standard", "standard", "MAE",
                         "futr: promo, wave; hist: temp; stat: size, region"))
def _nbeatsx_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 330)
    models = [NBEATSx(h=7, input_size=14, stack_types=["identity", "trend", "seasonality", "exogenous"],
                      n_blocks=[1, 1, 1, 1], mlp_units=SMALL, dropout_prob_theta=0.1, activation="Tanh",
                      futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                      scaler_type="standard", **trainer_kwargs(34, 50))]
    cases = _exog_cases(name, freq, 7, 331, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("nbeatsx_ms_stat_mq", ("NBEATSx(exogenous, identity; Sigmoid; exclude_insample_y)", "MS", 6, 12,
                             "revin", "-", "MQLoss(level=[80, 90])", "stat: size, region"))
def _nbeatsx_ms_stat_mq(name):
    freq = "MS"
    keep = ["unique_id", "ds", "y"]
    tr, _, st = exog_frame([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 6, 340)
    models = [NBEATSx(h=6, input_size=12, stack_types=["exogenous", "identity"], n_blocks=[1, 2],
                      mlp_units=SMALL, activation="Sigmoid", stat_exog_list=["size", "region"],
                      exclude_insample_y=True, scaler_type="revin", loss=MQLoss(level=[80, 90]),
                      **trainer_kwargs(35, 40))]
    a_df, _, a_st = exog_frame([("s1", 40), ("s2", 15), ("s3", 8)], "2024-03-01", freq, 6, 341)
    b_df, _, b_st = exog_frame([("s1", 20), ("s2", 13)], "2025-06-01", freq, 6, 342)
    b_df["y"] = np.round(b_df["y"] * 3.0 + 10.0, 3)
    b_st["size"] = [0.5, 6.0]
    cases = [(f"{name}__shortmix", a_df[keep], None, a_st), (f"{name}__rescaled", b_df[keep], None, b_st)]
    return models, dict(freq=freq), tr[keep], st, cases


# ---- NHITS ----

@spec("nhits_h_max_linear", ("NHITS(MaxPool1d, linear; n_pool_kernel_size=[3, 2, 1], n_freq_downsample=[5, 2, 1])",
                             "h", 12, 20, "minmax", "-", "MAE", "-"))
def _nhits_h_max_linear(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 350, 24)
    models = [NHITS(h=12, input_size=20, n_pool_kernel_size=[3, 2, 1], n_freq_downsample=[5, 2, 1],
                    pooling_mode="MaxPool1d", interpolation_mode="linear", mlp_units=[[16, 16], [16, 16]],
                    scaler_type="minmax", **trainer_kwargs(36, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 20, 350, 24)


@spec("nhits_d_avg_nearest_exog", ("NHITS(AvgPool1d, nearest; n_pool_kernel_size=[4, 2, 1], "
                                   "n_freq_downsample=[3, 2, 1], dropout_prob_theta=0.1, SELU)", "D", 7, 15,
                                   "standard", "standard", "MAE", "futr: promo, wave; hist: temp; stat: size, region"))
def _nhits_d_avg_nearest_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 360)
    models = [NHITS(h=7, input_size=15, n_pool_kernel_size=[4, 2, 1], n_freq_downsample=[3, 2, 1],
                    pooling_mode="AvgPool1d", interpolation_mode="nearest", mlp_units=SMALL,
                    dropout_prob_theta=0.1, activation="SELU",
                    futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                    scaler_type="standard", **trainer_kwargs(37, 50))]
    cases = _exog_cases(name, freq, 7, 361, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("nhits_me_cubic", ("NHITS(MaxPool1d, cubic; n_blocks=[1, 2, 1], LeakyReLU)", "ME", 12, 24,
                         "robust", "boxcox", "MAE", "-"))
def _nhits_me_cubic(name):
    freq = "ME"
    tr = concat(air_series("airline1"), air_series("airline2", scale=0.5, shift=20.0, last_n=120),
                air_series("airline3", scale=1.7, shift=-40.0, last_n=100))
    models = [NHITS(h=12, input_size=24, n_blocks=[1, 2, 1], n_pool_kernel_size=[2, 2, 1],
                    n_freq_downsample=[4, 2, 1], interpolation_mode="cubic", activation="LeakyReLU",
                    mlp_units=SMALL, scaler_type="robust", **trainer_kwargs(38, 50))]
    a = concat(tail_n(tr, "airline1", 60), tail_n(tr, "airline2", 30), tail_n(tr, "airline3", 20))
    b = concat(
        air_series("airline1", scale=3.0, shift=100.0, last_n=48),
        air_series("airline2", scale=0.1, shift=5.0).iloc[20:60],
        air_series("tiny", scale=0.02, shift=1.0, last_n=15),
    )
    cases = [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None)]
    return models, dict(freq=freq, local_scaler_type="boxcox"), tr, None, cases


@spec("nhits_int_mq", ("NHITS(AvgPool1d, linear; n_pool_kernel_size=[2, 3, 1], n_freq_downsample=[2, 1, 1], "
                       "Softplus)", "1 (integer ds)", 5, 10, "revin", "-", "MQLoss(level=[80, 90])", "-"))
def _nhits_int_mq(name):
    freq = 1
    tr = train_set([("s1", 80), ("s2", 60), ("s3", 45)], 200, freq, 370, 5)
    models = [NHITS(h=5, input_size=10, n_pool_kernel_size=[2, 3, 1], n_freq_downsample=[2, 1, 1],
                    pooling_mode="AvgPool1d", interpolation_mode="linear", activation="Softplus",
                    mlp_units=SMALL, scaler_type="revin", loss=MQLoss(level=[80, 90]), **trainer_kwargs(39, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 10, 370, 5, end_b=1000)
