"""Bundles that answer `level` / `quantiles`: fitted with conformal
`prediction_intervals` (both methods, several windows and steps, with a
series-level scaler, next to a multi-quantile model that ignores them).

NeuralForecast pairs the saved conformity scores with the request's series
by position, so every interval case holds as many series as training did.
"""

from __future__ import annotations

from make_fixtures import MQLoss, concat, spec, tail_n, train_set, trainer_kwargs
from neuralforecast.losses.pytorch import HuberIQLoss, IQLoss
from neuralforecast.models import MLP, NLinear
from neuralforecast.utils import PredictionIntervals


def _tails(tr, ns):
    uids = sorted(tr["unique_id"].unique())
    return concat(*[tail_n(tr, u, n) for u, n in zip(uids, ns)])


@spec("mlp_d_conformal_error", ("MLP", "D", 7, 14, "standard", "standard",
                                 "MAE + PredictionIntervals(conformal_error, n_windows=3)", "-"))
def _mlp_d_conformal_error(name):
    freq = "D"
    tr = train_set([("s1", 110), ("s2", 95), ("s3", 80)], "2024-03-31", freq, 150, 7)
    models = [MLP(h=7, input_size=14, hidden_size=32, num_layers=2, scaler_type="standard",
                  **trainer_kwargs(150, 40))]
    a = _tails(tr, [42, 30, 20])
    b = _tails(tr, [14, 60, 16])
    cases = [
        (f"{name}__point", a, None, None),
        (f"{name}__level", a, None, None, {"level": [95, 80]}),
        (f"{name}__quantiles", b, None, None, {"quantiles": [0.9, 0.1, 0.5, 0.3]}),
        (f"{name}__level_floats", b, None, None, {"level": [50.5, 99.0, 0]}),
        (f"{name}__level_h3", a, None, None, {"level": [90], "h": 3}),
    ]
    fit = {"prediction_intervals": PredictionIntervals(n_windows=3, method="conformal_error")}
    return models, dict(freq=freq, local_scaler_type="standard", fit=fit), tr, None, cases


@spec("conformal_dist_w", ("NLinear + MLP(MQLoss)", "W", 4, 12, "NLinear robust, MLP identity", "-",
                           "MAE / MQLoss(level=[80]) + PredictionIntervals(conformal_distribution, "
                           "n_windows=4, step_size=2)", "-"))
def _conformal_dist_w(name):
    freq = "W"
    tr = train_set([("a", 90), ("b", 70)], "2024-06-30", freq, 160, 8)
    models = [
        NLinear(h=4, input_size=12, scaler_type="robust", **trainer_kwargs(160, 40, lr=1e-2)),
        MLP(h=4, input_size=12, hidden_size=16, num_layers=2, loss=MQLoss(level=[80]),
            **trainer_kwargs(161, 40)),
    ]
    a = _tails(tr, [30, 13])
    cases = [
        (f"{name}__level", a, None, None, {"level": [80, 95]}),
        (f"{name}__quantiles", a, None, None, {"quantiles": [0.05, 0.5, 0.8]}),
        (f"{name}__level_h1", a, None, None, {"level": [60], "h": 1}),
    ]
    fit = {"prediction_intervals": PredictionIntervals(n_windows=4, method="conformal_distribution",
                                                        step_size=2)}
    return models, dict(freq=freq, fit=fit), tr, None, cases


@spec("iqloss_d", ("MLP(IQLoss) + NLinear(HuberIQLoss)", "D", 5, 15, "MLP standard, NLinear robust", "-",
                   "IQLoss(cos_embedding_dim=16) / HuberIQLoss(cos_embedding_dim=8)", "-"))
def _iqloss_d(name):
    """The quantile is an input of the network: no level -> `<alias>_ql0.5`;
    level / quantiles -> quantiles of an 11-quantile grid of forecasts."""
    freq = "D"
    tr = train_set([("s1", 100), ("s2", 80), ("s3", 70)], "2024-05-31", freq, 170, 7)
    models = [
        MLP(h=5, input_size=15, hidden_size=32, num_layers=2, scaler_type="standard",
            loss=IQLoss(cos_embedding_dim=16), valid_loss=IQLoss(cos_embedding_dim=16), **trainer_kwargs(170, 60)),
        NLinear(h=5, input_size=15, scaler_type="robust", loss=HuberIQLoss(cos_embedding_dim=8),
                valid_loss=HuberIQLoss(cos_embedding_dim=8), **trainer_kwargs(171, 60, lr=1e-2)),
    ]
    a = _tails(tr, [40, 25, 12])
    cases = [
        (f"{name}__point", a, None, None),
        (f"{name}__level", a, None, None, {"level": [95, 80, 0]}),
        (f"{name}__quantiles", a, None, None, {"quantiles": [0.9, 0.1, 0.5, 0.25]}),
        (f"{name}__level_h2", a, None, None, {"level": [50], "h": 2}),
    ]
    return models, dict(freq=freq), tr, None, cases
