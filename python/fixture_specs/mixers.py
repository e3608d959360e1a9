"""TiDE, MLPMultivariate, TSMixer, TSMixerx and iTransformer bundles.

The multivariate classes (all but TiDE) are trained on exactly three series
(s1, s2, s3, so ``n_series=3``) and forecast all of them in one window, so
every case holds exactly those three series: tails of different lengths (one
shorter than ``input_size``: zero left-padding), rescaled windows, and series
ending at different dates.
"""

from __future__ import annotations

import numpy as np
from make_fixtures import (
    MQLoss,
    air_series,
    concat,
    exog_frame,
    make_series,
    spec,
    tail_n,
    train_set,
    trainer_kwargs,
)
from neuralforecast.models import MLPMultivariate, TiDE, TSMixer, TSMixerx, iTransformer

UIDS = ("s1", "s2", "s3")


def mv_cases(name, train, freq, input_size, seed, period, level=100.0, trend=0.5, amp=10.0, ends=None):
    """Case a: tails of the training series (3L, L+5, L-3 rows), shuffled.
    Case b: the same ids at other scales and windows, one shorter than
    input_size; with ``ends`` the series end at different ds."""
    lens = [input_size * 3, input_size + 5, max(2, input_size - 3)]
    a = concat(*[tail_n(train, u, n) for u, n in zip(UIDS, lens)])
    end = train["ds"].max()
    ends = ends or (end, end, end)
    b = concat(
        make_series("s1", ends[0], input_size * 2 + 3, freq, seed + 101, level=level * 3.0 + 50, trend=-trend,
                    amp=amp * 2.5, period=period, noise=amp / 4),
        make_series("s2", ends[1], max(2, input_size - 4), freq, seed + 102, level=level * 0.4, trend=trend * 2,
                    amp=amp * 0.5, period=period, noise=amp / 8),
        make_series("s3", ends[2], input_size + 1, freq, seed + 103, level=level * 10, trend=trend * 5,
                    amp=amp * 8, period=period, noise=amp),
    )
    return [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None)]


def mv_exog_cases(name, freq, h, seed, input_size, end_a, end_b, with_hist=True, with_stat=True):
    """Exogenous cases over s1..s3: short mixed lengths (one < input_size),
    then a rescaled window with other static values."""
    short = max(2, input_size - 3)
    a_df, a_fu, a_st = exog_frame([("s1", input_size * 3), ("s2", input_size + 2), ("s3", short)], end_a, freq, h,
                                  seed, with_hist=with_hist)
    b_df, b_fu, b_st = exog_frame([("s1", input_size * 2), ("s2", short), ("s3", input_size + 4)], end_b, freq, h,
                                  seed + 1, with_hist=with_hist)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5, 2.5]
    if not with_stat:
        a_st = b_st = None
    return [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]


# ---- TiDE (univariate) ----

@spec("tide_d_standard", ("TiDE", "D", 7, 14, "standard", "-", "MAE", "-"))
def _tide_d_standard(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 300, 7)
    models = [TiDE(h=7, input_size=14, hidden_size=16, decoder_output_dim=4, temporal_decoder_dim=8,
                   temporal_width=2, num_encoder_layers=2, num_decoder_layers=1, scaler_type="standard",
                   **trainer_kwargs(31, 40))]
    return models, dict(freq=freq), tr, None, mv_cases(name, tr, freq, 14, 300, 7)


@spec("tide_h_exog", ("TiDE(layernorm=False)", "h", 12, 24, "robust", "standard", "MQLoss(level=[80])",
                      "futr: promo, wave; hist: temp; stat: size, region"))
def _tide_h_exog(name):
    freq = "h"
    tr, _, st = exog_frame([("s1", 200), ("s2", 160), ("s3", 140)], "2024-02-10 23:00:00", freq, 12, 310)
    models = [TiDE(h=12, input_size=24, hidden_size=16, decoder_output_dim=4, temporal_decoder_dim=8,
                   temporal_width=3, layernorm=False, scaler_type="robust", loss=MQLoss(level=[80]),
                   futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"],
                   **trainer_kwargs(32, 40))]
    cases = mv_exog_cases(name, freq, 12, 311, 24, "2024-02-20 05:00:00", "2024-05-01 17:00:00")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


# ---- MLPMultivariate ----

@spec("mlpmv_ms_minmax", ("MLPMultivariate(n_series=3)", "MS", 6, 12, "minmax", "robust", "MAE", "-"))
def _mlpmv_ms_minmax(name):
    freq = "MS"
    tr = train_set([(u, 72) for u in UIDS], "2023-12-01", freq, 320, 12)
    models = [MLPMultivariate(h=6, input_size=12, n_series=3, hidden_size=24, num_layers=2, scaler_type="minmax",
                              **trainer_kwargs(33, 40))]
    cases = mv_cases(name, tr, freq, 12, 320, 12, ends=("2024-06-01", "2023-09-01", "2025-01-01"))
    return models, dict(freq=freq, local_scaler_type="robust"), tr, None, cases


@spec("mlpmv_w_exog", ("MLPMultivariate(n_series=3)", "W (W-SUN)", 4, 12, "standard", "-", "MAE",
                       "futr: promo, wave; hist: temp; stat: size, region"))
def _mlpmv_w_exog(name):
    freq = "W"
    tr, _, st = exog_frame([(u, 90) for u in UIDS], "2024-06-30", freq, 4, 330)
    models = [MLPMultivariate(h=4, input_size=12, n_series=3, hidden_size=16, num_layers=2, scaler_type="standard",
                              futr_exog_list=["promo", "wave"], hist_exog_list=["temp"],
                              stat_exog_list=["size", "region"], **trainer_kwargs(34, 40))]
    cases = mv_exog_cases(name, freq, 4, 331, 12, "2024-08-04", "2025-03-02")
    return models, dict(freq=freq), tr, st, cases


# ---- TSMixer ----

@spec("tsmixer_h_revin", ("TSMixer(n_series=3, n_block=2, ff_dim=16)", "h", 12, 24, "revin", "-", "MAE", "-"))
def _tsmixer_h_revin(name):
    freq = "h"
    tr = train_set([(u, 200) for u in UIDS], "2024-01-10 23:00:00", freq, 340, 24)
    models = [TSMixer(h=12, input_size=24, n_series=3, n_block=2, ff_dim=16, dropout=0.1, revin=True,
                      scaler_type="revin", **trainer_kwargs(35, 40))]
    cases = mv_cases(name, tr, freq, 24, 340, 24)
    return models, dict(freq=freq), tr, None, cases


@spec("tsmixer_int_mq", ("TSMixer(n_series=3, n_block=1, ff_dim=8)", "1 (integer ds)", 5, 10, "identity",
                         "minmax", "MQLoss(level=[80, 90])", "-"))
def _tsmixer_int_mq(name):
    freq = 1
    tr = train_set([(u, 80) for u in UIDS], 300, freq, 350, 5)
    models = [TSMixer(h=5, input_size=10, n_series=3, n_block=1, ff_dim=8, dropout=0.1, revin=True,
                      scaler_type="identity", loss=MQLoss(level=[80, 90]), **trainer_kwargs(36, 40))]
    cases = mv_cases(name, tr, freq, 10, 350, 5, ends=(400, 350, 1000))
    return models, dict(freq=freq, local_scaler_type="minmax"), tr, None, cases


# ---- TSMixerx ----

@spec("tsmixerx_d_exog", ("TSMixerx(n_series=3, n_block=2, ff_dim=8)", "D", 7, 14, "standard", "standard", "MAE",
                          "futr: promo, wave; hist: temp; stat: size, region"))
def _tsmixerx_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([(u, 110) for u in UIDS], "2024-04-30", freq, 7, 360)
    models = [TSMixerx(h=7, input_size=14, n_series=3, n_block=2, ff_dim=8, dropout=0.1, revin=True,
                       scaler_type="standard", futr_exog_list=["promo", "wave"], hist_exog_list=["temp"],
                       stat_exog_list=["size", "region"], **trainer_kwargs(37, 40))]
    cases = mv_exog_cases(name, freq, 7, 361, 14, "2024-05-20", "2024-08-31")
    return models, dict(freq=freq, local_scaler_type="standard"), tr, st, cases


@spec("tsmixerx_qs_futr_mq", ("TSMixerx(n_series=3, n_block=1, ff_dim=8, revin=False)", "QS (QS-JAN)", 4, 8,
                              "robust", "-", "MQLoss(level=[80])", "futr: promo, wave"))
def _tsmixerx_qs_futr_mq(name):
    freq = "QS"
    tr, _, _ = exog_frame([(u, 60) for u in UIDS], "2024-01-01", freq, 4, 370, with_hist=False)
    models = [TSMixerx(h=4, input_size=8, n_series=3, n_block=1, ff_dim=8, dropout=0.1, revin=False,
                       scaler_type="robust", futr_exog_list=["promo", "wave"], loss=MQLoss(level=[80]),
                       **trainer_kwargs(38, 40))]
    cases = mv_exog_cases(name, freq, 4, 371, 8, "2024-07-01", "2026-01-01", with_hist=False, with_stat=False)
    return models, dict(freq=freq), tr, None, cases


# ---- iTransformer ----

@spec("itransformer_me_air", ("iTransformer(n_series=3, hidden_size=16, n_heads=2, e_layers=2, d_ff=32)", "ME",
                              12, 24, "robust", "-", "MAE", "-"))
def _itransformer_me_air(name):
    freq = "ME"
    tr = concat(air_series("s1"), air_series("s2", scale=0.5, shift=20.0),
                air_series("s3", scale=1.7, shift=-40.0))
    models = [iTransformer(h=12, input_size=24, n_series=3, hidden_size=16, n_heads=2, e_layers=2, d_ff=32,
                           scaler_type="robust", **trainer_kwargs(39, 40))]
    a = concat(tail_n(tr, "s1", 60), tail_n(tr, "s2", 30), tail_n(tr, "s3", 20))
    b = concat(
        air_series("s1", scale=3.0, shift=100.0, last_n=48),
        air_series("s2", scale=0.1, shift=5.0).iloc[20:60],  # an older window, ends mid-history
        air_series("s3", scale=0.02, shift=1.0, last_n=15),  # shorter than input_size
    )
    cases = [(f"{name}__tail", a, None, None), (f"{name}__rescaled_short", b, None, None)]
    return models, dict(freq=freq), tr, None, cases


@spec("itransformer_d_futr_mq", ("iTransformer(n_series=3, hidden_size=8, n_heads=2, e_layers=1, d_ff=16, "
                                 "use_norm=False)", "D", 7, 14, "standard", "robust", "MQLoss(level=[80, 90])",
                                 "futr: promo, wave"))
def _itransformer_d_futr_mq(name):
    freq = "D"
    tr, _, _ = exog_frame([(u, 100) for u in UIDS], "2024-04-30", freq, 7, 380, with_hist=False)
    models = [iTransformer(h=7, input_size=14, n_series=3, hidden_size=8, n_heads=2, e_layers=1, d_ff=16,
                           use_norm=False, scaler_type="standard", futr_exog_list=["promo", "wave"],
                           loss=MQLoss(level=[80, 90]), **trainer_kwargs(40, 40))]
    cases = mv_exog_cases(name, freq, 7, 381, 14, "2024-05-20", "2024-09-30", with_hist=False, with_stat=False)
    return models, dict(freq=freq, local_scaler_type="robust"), tr, None, cases


NAMES = ["tide_d_standard", "tide_h_exog", "mlpmv_ms_minmax", "mlpmv_w_exog", "tsmixer_h_revin", "tsmixer_int_mq",
         "tsmixerx_d_exog", "tsmixerx_qs_futr_mq", "itransformer_me_air", "itransformer_d_futr_mq"]
