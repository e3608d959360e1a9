"""RNN, LSTM, GRU, DilatedRNN, TCN and BiTCN bundles.

RNN/LSTM/GRU come with both decoders: ``recurrent=False`` (direct MLP
decoder; one with h > input_size, which adds ``upsample_sequence``) and
``recurrent=True`` (one-step head rolled out over the horizon on an
``input_size + 1`` window, exogenous shifted one step). Also covered: 1 and 2
encoder layers, the deprecated ``context_size`` and RNN ``encoder_activation``
(both ignored by 3.3.0), MQLoss on a recurrent LSTM (``proj_size`` = 3; 3.3.0
writes the mean of the quantiles into every quantile column), every
DilatedRNN cell type that runs in 3.3.0 (AttentiveLSTM's forward raises a
TypeError there, so it cannot be trained or served), TCN and BiTCN with and without exogenous variables.
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
from neuralforecast.models import GRU, LSTM, RNN, TCN, BiTCN, DilatedRNN

EXOG = dict(futr_exog_list=["promo", "wave"], hist_exog_list=["temp"], stat_exog_list=["size", "region"])
EXOG_ROW = "futr: promo, wave; hist: temp; stat: size, region"


def exog_cases(name, freq, h, seed, end_a, end_b):
    """Mixed lengths (one shorter than the window), then a rescaled window
    with other static values (as make_fixtures' ``_mlp_exog``)."""
    a_df, a_fu, a_st = exog_frame([("s1", 40), ("s2", 20), ("s3", 10)], end_a, freq, h, seed)
    b_df, b_fu, b_st = exog_frame([("s1", 30), ("s2", 9)], end_b, freq, h, seed + 1)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5]
    return [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]


@spec("rnn_d_direct", ("RNN(2x16, recurrent=False)", "D", 7, 14, "standard", "-", "MAE", "-"))
def _rnn_d_direct(name):
    freq = "D"
    tr = train_set([("s1", 120), ("s2", 100), ("s3", 90)], "2024-03-31", freq, 300, 7)
    models = [RNN(h=7, input_size=14, encoder_n_layers=2, encoder_hidden_size=16, decoder_hidden_size=16,
                  decoder_layers=2, recurrent=False, scaler_type="standard", **trainer_kwargs(31, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 14, 300, 7)


@spec("rnn_h_relu_rec", ("RNN(encoder_activation='relu', context_size=10, recurrent=True)", "h", 6, 12,
                         "robust", "standard", "MAE", "-"))
def _rnn_h_relu_rec(name):
    freq = "h"
    tr = train_set([("s1", 200), ("s2", 150), ("s3", 120)], "2024-01-10 23:00:00", freq, 310, 24)
    models = [RNN(h=6, input_size=12, encoder_n_layers=2, encoder_hidden_size=12, encoder_activation="relu",
                  context_size=10, recurrent=True, scaler_type="robust", **trainer_kwargs(32, 40))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, None,
            std_cases(name, tr, freq, 12, 310, 24, end_b="2024-02-01 05:00:00"))


@spec("lstm_d_exog", ("LSTM(2x12, recurrent=False, decoder 3 layers GELU; h > input_size)", "D", 7, 5,
                      "standard", "standard", "MAE", EXOG_ROW))
def _lstm_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 320)
    models = [LSTM(h=7, input_size=5, encoder_n_layers=2, encoder_hidden_size=12, decoder_hidden_size=12,
                   decoder_layers=3, decoder_activation="GELU", recurrent=False, scaler_type="standard",
                   **EXOG, **trainer_kwargs(33, 40))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, st,
            exog_cases(name, freq, 7, 321, "2024-05-20", "2024-08-31"))


@spec("lstm_w_rec_mq", ("LSTM(2x8, recurrent=True)", "W (W-SUN)", 4, 12, "minmax", "robust",
                        "MQLoss(level=[80])", "-"))
def _lstm_w_rec_mq(name):
    freq = "W"
    tr = train_set([("s1", 104), ("s2", 90), ("s3", 70)], "2024-06-30", freq, 330, 13)
    models = [LSTM(h=4, input_size=12, encoder_n_layers=2, encoder_hidden_size=8, recurrent=True,
                   loss=MQLoss(level=[80]), scaler_type="minmax", **trainer_kwargs(34, 40))]
    return (models, dict(freq=freq, local_scaler_type="robust"), tr, None,
            std_cases(name, tr, freq, 12, 330, 13, end_b="2025-01-05"))


@spec("gru_d_rec_exog", ("GRU(2x12, recurrent=True)", "D", 7, 14, "standard", "-", "MAE", EXOG_ROW))
def _gru_d_rec_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 340)
    models = [GRU(h=7, input_size=14, encoder_n_layers=2, encoder_hidden_size=12, recurrent=True,
                  scaler_type="standard", **EXOG, **trainer_kwargs(35, 40))]
    return models, dict(freq=freq), tr, st, exog_cases(name, freq, 7, 341, "2024-05-20", "2024-08-31")


@spec("gru_int_direct", ("GRU(1x16, recurrent=False, decoder_layers=1)", "1 (integer ds)", 3, 10, "robust",
                         "minmax", "MSE", "-"))
def _gru_int_direct(name):
    freq = 1
    tr = train_set([("s1", 80), ("s2", 60), ("s3", 45)], 200, freq, 350, 5)
    models = [GRU(h=3, input_size=10, encoder_n_layers=1, encoder_hidden_size=16, decoder_layers=1,
                  recurrent=False, loss=MSE(), scaler_type="robust", **trainer_kwargs(36, 40))]
    return (models, dict(freq=freq, local_scaler_type="minmax"), tr, None,
            std_cases(name, tr, freq, 10, 350, 5, end_b=1000))


@spec("dilated_rnn_d_exog", ("DilatedRNN(LSTM, [[1, 2], [4, 8]], 8)", "D", 7, 14, "robust", "-", "MAE",
                             EXOG_ROW))
def _dilated_rnn_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 360)
    models = [DilatedRNN(h=7, input_size=14, cell_type="LSTM", dilations=[[1, 2], [4, 8]], encoder_hidden_size=8,
                         decoder_hidden_size=8, scaler_type="robust", **EXOG, **trainer_kwargs(37, 30))]
    return models, dict(freq=freq), tr, st, exog_cases(name, freq, 7, 361, "2024-05-20", "2024-08-31")


@spec("dilated_rnn_ms_cells", ("DilatedRNN x3: GRU, RNN, ResLSTM", "MS", 4, 10,
                               "standard, identity, minmax1", "-", "MAE", "-"))
def _dilated_rnn_ms_cells(name):
    freq = "MS"
    tr = train_set([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 370, 12)
    common = dict(h=4, input_size=10, encoder_hidden_size=8, decoder_hidden_size=8)
    models = [
        DilatedRNN(cell_type="GRU", dilations=[[1, 2]], scaler_type="standard", alias="drnn_gru",
                   **common, **trainer_kwargs(38, 30)),
        DilatedRNN(cell_type="RNN", dilations=[[1], [3]], decoder_layers=1, scaler_type="identity",
                   alias="drnn_rnn", **common, **trainer_kwargs(39, 30)),
        DilatedRNN(cell_type="ResLSTM", dilations=[[1, 3]], scaler_type="minmax1", alias="drnn_res",
                   **common, **trainer_kwargs(40, 30)),
    ]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 10, 370, 12)


@spec("tcn_h_exog_mq", ("TCN(kernel 3, dilations [1, 2, 4], 12)", "h", 12, 24, "standard", "-",
                        "MQLoss(level=[80, 90])", EXOG_ROW))
def _tcn_h_exog_mq(name):
    freq = "h"
    tr, _, st = exog_frame([("s1", 200), ("s2", 160), ("s3", 130)], "2024-01-10 23:00:00", freq, 12, 380)
    models = [TCN(h=12, input_size=24, kernel_size=3, dilations=[1, 2, 4], encoder_hidden_size=12,
                  decoder_hidden_size=12, loss=MQLoss(level=[80, 90]), scaler_type="standard", **EXOG,
                  **trainer_kwargs(42, 40))]
    a_df, a_fu, a_st = exog_frame([("s1", 60), ("s2", 30), ("s3", 20)], "2024-01-20 05:00:00", freq, 12, 381)
    b_df, b_fu, b_st = exog_frame([("s1", 48), ("s2", 25)], "2024-03-01 23:00:00", freq, 12, 382)
    b_df["y"] = np.round(b_df["y"] * 0.5 + 10.0, 3)
    b_st["size"] = [3.0, 0.2]
    cases = [(f"{name}__shortmix", a_df, a_fu, a_st), (f"{name}__rescaled", b_df, b_fu, b_st)]
    return models, dict(freq=freq), tr, st, cases


@spec("bitcn_d_exog", ("BiTCN(hidden 8)", "D", 7, 14, "identity", "standard", "MAE", EXOG_ROW))
def _bitcn_d_exog(name):
    freq = "D"
    tr, _, st = exog_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, 7, 390)
    models = [BiTCN(h=7, input_size=14, hidden_size=8, dropout=0.1, scaler_type="identity", **EXOG,
                    **trainer_kwargs(43, 40))]
    return (models, dict(freq=freq, local_scaler_type="standard"), tr, st,
            exog_cases(name, freq, 7, 391, "2024-05-20", "2024-08-31"))


@spec("bitcn_ms_revin", ("BiTCN(hidden 8) + TCN(encoder_activation='Tanh', alias tcn_tanh)", "MS", 5, 9, "revin",
                         "-", "MAE", "-"))
def _bitcn_ms_revin(name):
    freq = "MS"
    tr = train_set([("s1", 96), ("s2", 72), ("s3", 60)], "2023-12-01", freq, 400, 12)
    models = [BiTCN(h=5, input_size=9, hidden_size=8, scaler_type="revin", **trainer_kwargs(44, 40)),
              TCN(h=5, input_size=9, kernel_size=2, dilations=[1, 2], encoder_hidden_size=8,
                  encoder_activation="Tanh", decoder_hidden_size=8, scaler_type="revin", alias="tcn_tanh",
                  **trainer_kwargs(45, 40))]
    return models, dict(freq=freq), tr, None, std_cases(name, tr, freq, 9, 400, 12)
