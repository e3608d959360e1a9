"""TFT, PatchTST, VanillaTransformer, Informer, Autoformer and FEDformer bundles.

Small widths (hidden 8-16, 1-2 layers, few heads) keep each bundle well under
100 KB. Covered: TFT with futr + hist + static exog (LSTM), a GRU TFT with
two layers sharing one initial state from the static encoder and MQLoss, and
a TFT without future exog (the last insample value stands in for it) or static
exog (zero contexts); PatchTST with revin (subtract_last) and residual
attention, without revin (pre-norm BatchNorm, plain attention, ReLU, MQLoss),
and with an affine mean-revin and a patch longer than the window;
VanillaTransformer / Informer / Autoformer / FEDformer with and without
future exog. Informer uses factor=5 so ProbSparse attention keeps every query
(otherwise its forward samples keys at random); FEDformer keeps all frequency
modes (or the lowest ones) because the randomly picked modes are not saved.
"""

from __future__ import annotations

import numpy as np
from make_fixtures import (
    MQLoss,
    exog_frame,
    spec,
    std_cases,
    train_set,
    trainer_kwargs,
)
from neuralforecast.models import TFT, Autoformer, FEDformer, Informer, PatchTST, VanillaTransformer

EXOG = dict(futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"])
EXOG_ROW = "futr: promo, wave; hist: temp; stat: size, region"
FUTR = dict(futr_exog_list=["promo", "wave"])


def exog_cases(name, freq, h, seed, end_a, end_b, keep=None):
    """Mixed lengths (one shorter than the window), then a rescaled window
    with other static values. `keep` = the exog kinds the model reads."""
    keep = {"futr", "hist", "stat"} if keep is None else keep
    a_df, a_fu, a_st = exog_frame([("s1", 40), ("s2", 20), ("s3", 10)], end_a, freq, h, seed)
    b_df, b_fu, b_st = exog_frame([("s1", 30), ("s2", 9)], end_b, freq, h, seed + 1)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5]
    out = []
    for tag, df, fu, st in (("shortmix", a_df, a_fu, a_st), ("rescaled", b_df, b_fu, b_st)):
        drop = ([] if "hist" in keep else ["temp"]) + ([] if "futr" in keep else ["promo", "wave"])
        out.append((f"{name}__{tag}", df.drop(columns=drop), fu if "futr" in keep else None,
                    st if "stat" in keep else None))
    return out


def exog_train(freq, h, seed, end, lens=(120, 100, 90), keep=None):
    keep = {"futr", "hist", "stat"} if keep is None else keep
    tr, _, st = exog_frame([(f"s{i + 1}", n) for i, n in enumerate(lens)], end, freq, h, seed)
    drop = ([] if "hist" in keep else ["temp"]) + ([] if "futr" in keep else ["promo", "wave"])
    return tr.drop(columns=drop), (st if "stat" in keep else None)


# ---- TFT ----

@spec("tft_d_exog", ("TFT(hidden 12, 3 heads, LSTM)", "D", 7, 14, "robust", "standard", "MAE", EXOG_ROW))
def _tft_d_exog(name):
    freq = "D"
    tr, st = exog_train(freq, 7, 500, "2024-04-30")
    models = [TFT(h=7, input_size=14, hidden_size=12, n_head=3, scaler_type="robust", **EXOG,
                  **trainer_kwargs(51, 40, lr=5e-3))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, st,
            exog_cases(name, freq, 7, 501, "2024-05-20", "2024-08-31"))


@spec("tft_h_gru_mq", ("TFT(hidden 8, 2 heads, GRU x2, one_rnn_initial_state, GELU GRNs)", "h", 12, 24,
                       "standard", "-", "MQLoss(level=[80, 90])", "futr: promo, wave; stat: size, region"))
def _tft_h_gru_mq(name):
    freq = "h"
    keep = {"futr", "stat"}
    tr, st = exog_train(freq, 12, 510, "2024-02-10 23:00:00", lens=(200, 160, 140), keep=keep)
    models = [TFT(h=12, input_size=24, hidden_size=8, n_head=2, rnn_type="gru", n_rnn_layers=2,
                  one_rnn_initial_state=True, grn_activation="GELU", scaler_type="standard",
                  futr_exog_list=["promo", "wave"], stat_exog_list=["size", "region"],
                  loss=MQLoss(level=[80, 90]), **trainer_kwargs(52, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, st,
            exog_cases(name, freq, 12, 511, "2024-02-20 05:00:00", "2024-05-01 17:00:00", keep=keep))


@spec("tft_ms_hist", ("TFT(hidden 8, 2 heads, LSTM x2, Tanh GRNs)", "MS", 6, 12, "identity", "minmax", "MAE",
                      "hist: temp"))
def _tft_ms_hist(name):
    freq = "MS"
    keep = {"hist"}
    tr, st = exog_train(freq, 6, 520, "2023-12-01", lens=(96, 72, 60), keep=keep)
    models = [TFT(h=6, input_size=12, hidden_size=8, n_head=2, n_rnn_layers=2, grn_activation="Tanh",
                  scaler_type="identity", hist_exog_list=["temp"], **trainer_kwargs(53, 40, lr=5e-3))]
    return (models, dict(freq=freq, local_scaler_type="minmax"), tr, st,
            exog_cases(name, freq, 6, 521, "2024-03-01", "2025-06-01", keep=keep))


# ---- PatchTST ----

@spec("patchtst_d_revin", ("PatchTST(patch_len=8, stride=4, hidden 16, 4 heads, 2 layers, revin subtract_last)",
                           "D", 7, 24, "identity", "-", "MAE", "-"))
def _patchtst_d_revin(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 530, 7)
    models = [PatchTST(h=7, input_size=24, patch_len=8, stride=4, hidden_size=16, n_heads=4, encoder_layers=2,
                       linear_hidden_size=32, scaler_type="identity", **trainer_kwargs(54, 40, lr=1e-3))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 24, 530, 7)


@spec("patchtst_h_norevin_mq", ("PatchTST(patch_len=6, stride=3, revin=False, res_attention=False, "
                                "batch_normalization, relu)", "h", 12, 20, "standard", "standard",
                                "MQLoss(level=[80])", "-"))
def _patchtst_h_norevin_mq(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 540, 24)
    models = [PatchTST(h=12, input_size=20, patch_len=6, stride=3, hidden_size=8, n_heads=2, encoder_layers=1,
                       linear_hidden_size=16, revin=False, res_attention=False, batch_normalization=True,
                       activation="relu", scaler_type="standard", loss=MQLoss(level=[80]),
                       **trainer_kwargs(55, 40, lr=1e-3))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, None,
            std_cases(name, tr, freq, 20, 540, 24, end_b="2024-02-01 05:00:00"))


@spec("patchtst_w_affine", ("PatchTST(patch_len=16 > input_size, stride=4, revin_affine, mean revin, "
                            "fixed pos embedding)", "W (W-SUN)", 4, 12, "robust", "-", "MAE", "-"))
def _patchtst_w_affine(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 550, 13)
    models = [PatchTST(h=4, input_size=12, patch_len=16, stride=4, hidden_size=8, n_heads=2, encoder_layers=2,
                       linear_hidden_size=16, revin_affine=True, revin_subtract_last=False, learn_pos_embed=False,
                       scaler_type="robust", **trainer_kwargs(56, 40, lr=1e-3))]
    return (models, dict(freq=freq), tr, None,
            std_cases(name, tr, freq, 12, 550, 13, end_b="2025-01-05"))


# ---- VanillaTransformer / Informer (their sin/cos tables, saved as [1, 5000, hidden] buffers in both
# embeddings, dominate the bundle size: hidden 4) ----

@spec("vanilla_d_futr", ("VanillaTransformer(hidden 4, 2 heads, 2 enc + 1 dec layers)", "D", 7, 14, "standard",
                         "-", "MAE", "futr: promo, wave"))
def _vanilla_d_futr(name):
    freq = "D"
    keep = {"futr"}
    tr, _ = exog_train(freq, 7, 560, "2024-04-30", keep=keep)
    models = [VanillaTransformer(h=7, input_size=14, hidden_size=4, n_head=2, conv_hidden_size=8,
                                 encoder_layers=2, decoder_layers=1, scaler_type="standard", **FUTR,
                                 **trainer_kwargs(57, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            exog_cases(name, freq, 7, 561, "2024-05-20", "2024-08-31", keep=keep))


@spec("vanilla_ms_mq", ("VanillaTransformer(hidden 4, 1 head, relu, decoder_input_size_multiplier=0.3, "
                        "2 dec layers)", "MS", 6, 12, "robust", "-", "MQLoss(level=[80])", "-"))
def _vanilla_ms_mq(name):
    freq = "MS"
    tr = train_set([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 570, 12)
    models = [VanillaTransformer(h=6, input_size=12, hidden_size=4, n_head=1, conv_hidden_size=8,
                                 activation="relu", decoder_input_size_multiplier=0.3, encoder_layers=1,
                                 decoder_layers=2, scaler_type="robust", loss=MQLoss(level=[80]),
                                 **trainer_kwargs(58, 40, lr=5e-3))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 12, 570, 12)


@spec("informer_d_futr", ("Informer(hidden 4, 2 heads, factor=5, distil, 2 enc + 1 dec layers)", "D", 6, 12,
                          "standard", "-", "MAE", "futr: promo, wave"))
def _informer_d_futr(name):
    freq = "D"
    keep = {"futr"}
    tr, _ = exog_train(freq, 6, 580, "2024-04-30", keep=keep)
    models = [Informer(h=6, input_size=12, hidden_size=4, n_head=2, conv_hidden_size=8, factor=5,
                       encoder_layers=2, decoder_layers=1, scaler_type="standard", **FUTR,
                       **trainer_kwargs(59, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            exog_cases(name, freq, 6, 581, "2024-05-20", "2024-08-31", keep=keep))


@spec("informer_h_mq", ("Informer(hidden 4, 2 heads, factor=6, distil=False, relu)", "h", 8, 16, "robust", "-",
                        "MQLoss(level=[80])", "-"))
def _informer_h_mq(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 590, 24)
    models = [Informer(h=8, input_size=16, hidden_size=4, n_head=2, conv_hidden_size=8, factor=6, distil=False,
                       activation="relu", encoder_layers=1, decoder_layers=1, scaler_type="robust",
                       loss=MQLoss(level=[80]), **trainer_kwargs(60, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            std_cases(name, tr, freq, 16, 590, 24, end_b="2024-02-01 05:00:00"))


# ---- Autoformer / FEDformer (no positional table) ----

@spec("autoformer_d_futr", ("Autoformer(hidden 8, 2 heads, MovingAvg_window=5, factor=3)", "D", 7, 14, "standard",
                            "-", "MAE", "futr: promo, wave"))
def _autoformer_d_futr(name):
    freq = "D"
    keep = {"futr"}
    tr, _ = exog_train(freq, 7, 600, "2024-04-30", keep=keep)
    models = [Autoformer(h=7, input_size=14, hidden_size=8, n_head=2, conv_hidden_size=16, MovingAvg_window=5,
                         encoder_layers=2, decoder_layers=1, scaler_type="standard", **FUTR,
                         **trainer_kwargs(61, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            exog_cases(name, freq, 7, 601, "2024-05-20", "2024-08-31", keep=keep))


@spec("autoformer_w_mq", ("Autoformer(hidden 8, 2 heads, MovingAvg_window=3, factor=1, relu; odd lengths)",
                          "W (W-SUN)", 4, 13,
                          "robust", "-", "MQLoss(level=[80])", "-"))
def _autoformer_w_mq(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 610, 13)
    models = [Autoformer(h=4, input_size=13, hidden_size=8, n_head=2, conv_hidden_size=8, MovingAvg_window=3,
                         factor=1, activation="relu", encoder_layers=1, decoder_layers=1, scaler_type="robust",
                         loss=MQLoss(level=[80]), **trainer_kwargs(62, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            std_cases(name, tr, freq, 13, 610, 13, end_b="2025-01-05"))


@spec("fedformer_d_futr", ("FEDformer(hidden 16, 8 heads, all modes, MovingAvg_window=5; odd lengths)", "D", 7, 15,
                           "standard",
                           "-", "MAE", "futr: promo, wave"))
def _fedformer_d_futr(name):
    freq = "D"
    keep = {"futr"}
    tr, _ = exog_train(freq, 7, 620, "2024-04-30", keep=keep)
    models = [FEDformer(h=7, input_size=15, hidden_size=16, conv_hidden_size=16, MovingAvg_window=5,
                        encoder_layers=2, decoder_layers=1, scaler_type="standard", **FUTR,
                        **trainer_kwargs(63, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            exog_cases(name, freq, 7, 621, "2024-05-20", "2024-08-31", keep=keep))


@spec("fedformer_h_low_mq", ("FEDformer(hidden 8, mode_select='low', modes=3, relu)", "h", 8, 16, "robust", "-",
                             "MQLoss(level=[80])", "-"))
def _fedformer_h_low_mq(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 630, 24)
    models = [FEDformer(h=8, input_size=16, hidden_size=8, conv_hidden_size=8, mode_select="low", modes=3,
                        MovingAvg_window=5, activation="relu", encoder_layers=1, decoder_layers=1,
                        scaler_type="robust", loss=MQLoss(level=[80]), **trainer_kwargs(64, 40, lr=5e-3))]
    return (models, dict(freq=freq), tr, None,
            std_cases(name, tr, freq, 16, 630, 24, end_b="2024-02-01 05:00:00"))
