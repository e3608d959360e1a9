#!/usr/bin/env python
"""Golden cases for a request-level horizon `h` (docs/contract.md).

Usage (from the repo root, after python/make_fixtures.py):
    V=$(scripts/python-env.sh)
    $V/bin/python python/make_horizon_cases.py [--out tests/fixtures]

For each (bundle, h) below it takes the bundle's first committed case, adds
`"h": h` to the request and records what NeuralForecast 3.3.0 answers:
``nf.predict(..., h=h)`` above the bundle's horizon (its recursive path:
direct models fed their own forecasts, recurrent decoders rolled out),
``nf.predict(...)`` cut to the first h steps below it (NeuralForecast
refuses h below its own, the contract truncates). Cases are written as
``<out>/cases/<bundle>__h<h>.json``; the bundles are not touched.
"""

from __future__ import annotations

import argparse
import json
import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures as mf  # noqa: E402  (sets CPU, one thread, quiet logs)
from neuralforecast import NeuralForecast  # noqa: E402

# bundle -> horizons: truncation, recursion that is and is not a multiple of
# h, several models, quantile heads (median fed back), Box-Cox, integer ds,
# a multivariate model, recurrent decoders (rolled out) and a direct RNN.
HORIZONS = {
    "mlp_d_standard": [3, 17],
    "multi_d": [10],
    "dlinear_me_air": [30],
    "mlp_me_mq": [25],
    "nbeats_w_shared": [9],
    "nhits_int_mq": [11],
    "mlp_int_robust": [5],
    "alias_ms": [2, 7],
    "rnn_h_relu_rec": [15],
    "lstm_w_rec_mq": [9],
    "rnn_d_direct": [16],
    "tsmixer_h_revin": [30],
    "patchtst_d_revin": [10],
    "mlp_exog": [3],
}


def first_case(case_dir, bundle):
    derived = ("__h", "__masked")  # cases made from a first case (here and in make_masked_cases.py)
    names = sorted(f for f in os.listdir(case_dir)
                   if f.startswith(bundle + "__") and not any(d in f[len(bundle):] for d in derived))
    if not names:
        raise SystemExit(f"no case for bundle {bundle} in {case_dir}: run make_fixtures.py first")
    with open(os.path.join(case_dir, names[0])) as f:
        return json.load(f)


def request_frames(request: dict, freq) -> dict:
    """A case request's tables as nf.predict takes them."""
    return {k: mf.records_to_df(request[k], freq) for k in ("df", "futr_df", "static_df") if k in request}


def write_case(case_dir: str, bundle: str, suffix: str, request: dict, fc) -> None:
    """<case_dir>/<bundle>__<suffix>.json with NeuralForecast's forecast as the expectation."""
    case = {"bundle": bundle, "request": request,
            "expected": {"model": bundle, "predictions": mf.predictions_to_records(fc)}}
    mf.dump_case(os.path.join(case_dir, f"{bundle}__{suffix}.json"), case)
    print(f"{bundle}__{suffix}: {len(case['expected']['predictions'])} rows", flush=True)


def fixture_dirs(argv, doc: str) -> tuple[str, str]:
    """--out (default tests/fixtures) and its cases/ directory."""
    ap = argparse.ArgumentParser(description=doc, formatter_class=argparse.RawDescriptionHelpFormatter)
    ap.add_argument("--out", default=os.path.join(os.path.dirname(os.path.abspath(__file__)), "..",
                                                  "tests", "fixtures"))
    out = os.path.abspath(ap.parse_args(argv).out)
    return out, os.path.join(out, "cases")


def main(argv=None):
    out, case_dir = fixture_dirs(argv, __doc__)
    for bundle, horizons in HORIZONS.items():
        nf = NeuralForecast.load(os.path.join(out, "bundles", bundle))
        base = first_case(case_dir, bundle)
        kwargs = request_frames(base["request"], nf.freq)
        for h in horizons:
            if h > nf.h:
                fc = nf.predict(**kwargs, h=h)
            else:
                fc = nf.predict(**kwargs)
                fc = fc.sort_values(["unique_id", "ds"], kind="stable").groupby("unique_id").head(h)
            write_case(case_dir, bundle, f"h{h}", dict(base["request"], h=h), fc)
    return 0


if __name__ == "__main__":
    sys.exit(main())
