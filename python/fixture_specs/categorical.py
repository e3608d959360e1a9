"""Bundles with categorical exogenous features (NeuralForecast 3.3's
``cat_exog_list``): string categories in each list the model takes, a
future day-of-week name (``dow``, 7 values), a historical weather label
(``sky``, 3 values) and a static store type (``store``, 3 values), next to
numeric exogenous columns (``promo``, ``temp``, ``size``) and, in most
bundles, a local scaler. Each ``cat_emb_dim`` strategy (fastai, sqrt, half
and an integer) appears. Every bundle has three cases: mixed lengths (one
shorter than the window, so padding reads as the unseen index 0), a
rescaled window, and values the fit never saw in every categorical column
(``"Holiday"``, ``"hail"``, ``"kiosk"``: mapped to 0, whose embedding is the
mean of the learned rows).
"""

from __future__ import annotations

import numpy as np
import pandas as pd
from make_fixtures import concat, spec, trainer_kwargs
from neuralforecast.models import (
    GRU,
    KAN,
    LSTM,
    MLP,
    NHITS,
    RNN,
    TCN,
    Autoformer,
    BiTCN,
    DeepNPTS,
    DilatedRNN,
    FEDformer,
    Informer,
    MLPMultivariate,
    NBEATSx,
    TiDE,
    TimesNet,
    TimeXer,
    TSMixerx,
    VanillaTransformer,
    XLinear,
)

DOW = ["Mon", "Tue", "Wed", "Thu", "Fri", "Sat", "Sun"]
SKY = ["sun", "cloud", "rain"]
STORES = ["mall", "street", "outlet"]
CARDINALITIES = {"dow": 7, "sky": 3, "store": 3}


def cat_frame(uids_lens, end, freq, h, seed, unseen=False):
    """df (y, promo, temp, dow, sky), futr_df (promo, dow) of h rows, static_df
    (size, store); the categories move y so their embeddings learn something."""
    rng = np.random.default_rng(seed)
    hist, futr, stat = [], [], []
    for i, (u, n) in enumerate(uids_lens):
        ds = pd.date_range(end=pd.Timestamp(end), periods=n + h, freq=freq)
        t = np.arange(n + h)
        # A discount level rather than a 0/1 flag: a window where a continuous
        # column is constant makes TemporalNorm divide float32 rounding by its
        # epsilon, where torch's answer depends on its summation order.
        promo = np.round(rng.uniform(0.0, 0.5, n + h), 3)
        temp = np.round(15 + 8 * np.sin(2 * np.pi * t / 30 + i) + rng.normal(0, 1, n + h), 3)
        dow = np.array([DOW[d.dayofweek] for d in ds], dtype=object)
        sky = np.array([SKY[k] for k in rng.integers(0, 3, n + h)], dtype=object)
        store = STORES[i % 3]
        y = (40 * (1 + i) + 0.2 * t + 9 * (dow == "Sat") + 12 * (dow == "Sun") + 10 * promo
             - 5 * (sky == "rain") + 0.4 * temp + 7 * STORES.index(store) + rng.normal(0, 1.5, n + h))
        y = np.round(np.maximum(y, 1.0), 3)
        if unseen:
            dow[n:n + 2] = "Holiday"
            sky[n - 3:n - 1] = "hail"
            store = "kiosk" if i == 0 else store
        d = pd.DataFrame({"unique_id": u, "ds": ds, "y": y, "promo": promo, "temp": temp, "dow": dow, "sky": sky})
        hist.append(d.iloc[:n])
        futr.append(d.iloc[n:][["unique_id", "ds", "promo", "dow"]])
        stat.append({"unique_id": u, "size": float(1 + i), "store": store})
    return concat(*hist), concat(*futr), pd.DataFrame(stat)


def exog_of(cls, futr=True, hist=True, stat=True):
    """The lists a class takes (EXOGENOUS_FUTR/HIST/STAT), each with one
    numeric and one categorical column."""
    kw, cats = {}, []
    if futr and cls.EXOGENOUS_FUTR:
        kw["futr_exog_list"] = ["promo", "dow"]
        cats.append("dow")
    if hist and cls.EXOGENOUS_HIST:
        kw["hist_exog_list"] = ["temp", "sky"]
        cats.append("sky")
    if stat and cls.EXOGENOUS_STAT:
        kw["stat_exog_list"] = ["size", "store"]
        cats.append("store")
    kw["cat_exog_list"] = cats
    kw["categorical_cardinalities"] = {c: CARDINALITIES[c] for c in cats}
    return kw


def exog_row(kw):
    parts = []
    for key, label in (("futr_exog_list", "futr"), ("hist_exog_list", "hist"), ("stat_exog_list", "stat")):
        if key in kw:
            parts.append(f"{label}: " + ", ".join(f"{c} (cat)" if c in kw["cat_exog_list"] else c for c in kw[key]))
    return "; ".join(parts)


def cat_cases(name, freq, h, seed, end_a, end_b, end_c, mv=False):
    """Multivariate models (mv) take exactly the three trained series."""
    a = cat_frame([("s1", 40), ("s2", 20), ("s3", 10)], end_a, freq, h, seed)
    b_series = [("s1", 30), ("s2", 25), ("s3", 22)] if mv else [("s1", 30), ("s2", 25)]
    b_df, b_fu, b_st = cat_frame(b_series, end_b, freq, h, seed + 1)
    b_df["y"] = np.round(b_df["y"] * 2.5 + 40.0, 3)
    b_st["size"] = [4.0, 0.5, 2.0][: len(b_series)]
    c = cat_frame([("s1", 30), ("s2", 28), ("s3", 26)], end_c, freq, h, seed + 2, unseen=True)
    return [(f"{name}__shortmix", *a), (f"{name}__rescaled", b_df, b_fu, b_st), (f"{name}__unseen", *c)]


def cat_bundle(name, cls, model_kw, h, input_size, seed, scaler, local_scaler, emb, row, lists=None):
    """Registers one categorical bundle of `cls` (daily, three series)."""
    exog = exog_of(cls, **(lists or {}))
    exog["cat_emb_dim"] = emb

    cats = exog["cat_exog_list"]

    def trim(df, fu, st):
        """Only the categorical columns the model reads: nf.predict turns every
        other df / static_df column into float32, which a string is not."""
        df = df.drop(columns=[c for c in ("dow", "sky") if c not in cats])
        fu = fu.drop(columns=[c for c in ("dow",) if c not in cats])
        st = None if "stat_exog_list" not in exog else st.drop(columns=[c for c in ("store",) if c not in cats])
        return df, fu, st

    @spec(name, (row, "D", h, input_size, scaler, local_scaler or "-", "MAE",
                 exog_row(exog) + f"; cat_emb_dim={emb!r}"))
    def _build(name):
        freq = "D"
        tr, _, st = trim(*cat_frame([("s1", 120), ("s2", 100), ("s3", 90)], "2024-04-30", freq, h, seed))
        models = [cls(h=h, input_size=input_size, scaler_type=scaler, **model_kw, **exog,
                      **trainer_kwargs(seed % 97, 60))]
        cases = [(c, *trim(df, fu, st)) for c, df, fu, st in
                 cat_cases(name, freq, h, seed + 1, "2024-05-20", "2024-08-31", "2024-10-15", mv=cls.MULTIVARIATE)]
        if "futr_exog_list" not in exog:
            cases = [(c, df, None, st) for c, df, _, st in cases]
        kw = dict(freq=freq)
        if local_scaler:
            kw["local_scaler_type"] = local_scaler
        return models, kw, tr, st, cases

    return _build


cat_bundle("mlp_cat", MLP, dict(hidden_size=32, num_layers=2), 7, 14, 410, "standard", "standard",
           "fastai", "MLP(hidden 32, 2 layers)")
cat_bundle("nhits_cat", NHITS, dict(mlp_units=[[16, 16]] * 3, n_pool_kernel_size=[2, 2, 1],
                                     n_freq_downsample=[4, 2, 1]), 7, 14, 420, "robust", None,
           "sqrt", "NHITS(mlp_units 16x16, pools [2, 2, 1])")
cat_bundle("tide_cat", TiDE, dict(hidden_size=16, decoder_output_dim=4, temporal_decoder_dim=8,
                                   temporal_width=3), 7, 14, 430, "standard", "robust",
           "half", "TiDE(hidden 16)")
cat_bundle("lstm_cat", LSTM, dict(encoder_n_layers=1, encoder_hidden_size=12, decoder_hidden_size=12,
                                   decoder_layers=2, recurrent=False), 7, 14, 440, "standard", "standard",
           3, "LSTM(1x12, recurrent=False)")
cat_bundle("gru_cat", GRU, dict(encoder_n_layers=2, encoder_hidden_size=12, recurrent=False), 7, 14, 450,
           "robust", None, "fastai", "GRU(2x12, recurrent=False)")
# recurrent=True: the hist row past the window is zeroed before embedding, so
# a historical category reads as unseen there; one bundle without hist.
cat_bundle("rnn_rec_cat", RNN, dict(encoder_n_layers=1, encoder_hidden_size=12, recurrent=True), 7, 14, 460,
           "standard", "standard", "sqrt", "RNN(1x12, recurrent=True)", lists=dict(hist=False))
cat_bundle("lstm_rec_cat", LSTM, dict(encoder_n_layers=1, encoder_hidden_size=12, recurrent=True), 7, 14, 465,
           "robust", "standard", "half", "LSTM(1x12, recurrent=True)")
cat_bundle("dilated_rnn_cat", DilatedRNN, dict(cell_type="LSTM", dilations=[[1, 2], [4, 8]], encoder_hidden_size=8,
                                                decoder_hidden_size=8), 7, 14, 470, "robust", None, "half",
           "DilatedRNN(LSTM, [[1, 2], [4, 8]], 8)")
cat_bundle("tcn_cat", TCN, dict(kernel_size=3, dilations=[1, 2, 4], encoder_hidden_size=12, decoder_hidden_size=12),
           7, 14, 480, "standard", "robust", 4, "TCN(kernel 3, dilations [1, 2, 4], 12)")
cat_bundle("bitcn_cat", BiTCN, dict(hidden_size=8), 7, 14, 490, "identity", "standard", "fastai", "BiTCN(hidden 8)")
cat_bundle("kan_cat", KAN, dict(hidden_size=16, n_hidden_layers=1), 7, 14, 500, "standard", "standard", "sqrt",
           "KAN(hidden_size=16, n_hidden_layers=1)")
cat_bundle("deepnpts_cat", DeepNPTS, dict(hidden_size=16, n_layers=2), 7, 14, 510, "standard", "standard", "half",
           "DeepNPTS(hidden_size=16, n_layers=2)")
cat_bundle("nbeatsx_cat", NBEATSx, dict(stack_types=["identity", "trend", "exogenous"], n_blocks=[1, 1, 1],
                                         mlp_units=[[16, 16]]), 7, 14, 520, "standard", "standard", 2,
           "NBEATSx(identity, trend, exogenous)")
cat_bundle("mlpmv_cat", MLPMultivariate, dict(n_series=3, hidden_size=24, num_layers=2), 7, 14, 530, "standard",
           "standard", "fastai", "MLPMultivariate(n_series=3)")
cat_bundle("tsmixerx_cat", TSMixerx, dict(n_series=3, n_block=2, ff_dim=8, revin=True), 7, 14, 540, "standard",
           None, "sqrt", "TSMixerx(n_series=3, n_block=2, ff_dim=8)")
cat_bundle("timexer_cat", TimeXer, dict(n_series=3, patch_len=7, hidden_size=4, n_heads=2, e_layers=2, d_ff=8),
           7, 14, 550, "standard", "standard", "half", "TimeXer(n_series=3, patch_len=7, hidden_size=4)")
cat_bundle("xlinear_cat", XLinear, dict(n_series=3, hidden_size=16, temporal_ff=16, channel_ff=6), 7, 14, 560,
           "standard", "robust", 3, "XLinear(n_series=3, hidden_size=16)")
cat_bundle("timesnet_cat", TimesNet, dict(hidden_size=4, conv_hidden_size=8, top_k=2, num_kernels=2,
                                           encoder_layers=1), 7, 14, 570, "standard", "standard", "fastai",
           "TimesNet(hidden_size=4, top_k=2)")
cat_bundle("vanilla_cat", VanillaTransformer, dict(hidden_size=4, n_head=2, conv_hidden_size=8, encoder_layers=2,
                                                    decoder_layers=1), 7, 14, 580, "standard", "standard", "sqrt",
           "VanillaTransformer(hidden 4, 2 heads)")
cat_bundle("informer_cat", Informer, dict(hidden_size=4, n_head=2, conv_hidden_size=8, factor=5, encoder_layers=2,
                                          decoder_layers=1), 6, 12, 590, "standard", "standard", "half",
           "Informer(hidden 4, 2 heads, factor=5)")
cat_bundle("autoformer_cat", Autoformer, dict(hidden_size=8, n_head=2, conv_hidden_size=16, MovingAvg_window=5,
                                              encoder_layers=2, decoder_layers=1), 7, 14, 600, "standard",
           "standard", 2, "Autoformer(hidden 8, 2 heads)")
cat_bundle("fedformer_cat", FEDformer, dict(hidden_size=16, conv_hidden_size=16, MovingAvg_window=5,
                                            encoder_layers=2, decoder_layers=1), 7, 15, 610, "standard",
           "standard", "fastai", "FEDformer(hidden 16)")
