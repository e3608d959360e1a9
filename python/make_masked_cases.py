#!/usr/bin/env python
"""Golden cases with rows marked unavailable (`available_mask` 0 in df).

Usage (from the repo root, after python/make_fixtures.py):
    V=$(scripts/python-env.sh)
    $V/bin/python python/make_masked_cases.py [--out tests/fixtures]

For each bundle below it takes the bundle's first committed case, adds
`available_mask` to every df row (0 on every third of the last 24 rows of
each series and on its first row, 1 elsewhere) and records what
NeuralForecast 3.3.0 answers: unavailable rows are left out of the temporal
scaler's statistics (y and exogenous), NBEATS/NHITS/NBEATSx also multiply
their residuals by the mask, and the series-level scaler ignores it. Cases
are written as ``<out>/cases/<bundle>__masked.json``; bundles are untouched.
"""

from __future__ import annotations

import os
import sys

sys.path.insert(0, os.path.dirname(os.path.abspath(__file__)))

import make_fixtures  # noqa: E402,F401  (sets CPU, one thread, quiet logs)
from make_horizon_cases import first_case, fixture_dirs, request_frames, write_case  # noqa: E402
from neuralforecast import NeuralForecast  # noqa: E402

# Scalers standard / robust (lower median) / minmax, exogenous, a local
# scaler, the residual-masking models, a recurrent model, integer ds.
BUNDLES = ["mlp_d_standard", "mlp_int_robust", "mlp_h_minmax", "mlp_exog", "nhits_h_max_linear",
           "nbeatsx_d_exog", "lstm_d_exog", "tide_d_standard", "nbeats_d_its"]


def with_mask(rows: list[dict]) -> list[dict]:
    """The same rows (same order) with available_mask set."""
    by_series: dict = {}
    for i, r in enumerate(rows):
        by_series.setdefault(r["unique_id"], []).append((r["ds"], i))
    off = set()
    for items in by_series.values():
        idx = [i for _, i in sorted(items)]
        off.add(idx[0])
        off.update(i for k, i in enumerate(reversed(idx[-24:])) if k % 3 == 1)
    return [dict(r, available_mask=0.0 if i in off else 1.0) for i, r in enumerate(rows)]


def main(argv=None):
    out, case_dir = fixture_dirs(argv, __doc__)
    for bundle in BUNDLES:
        nf = NeuralForecast.load(os.path.join(out, "bundles", bundle))
        base = first_case(case_dir, bundle)
        request = dict(base["request"], df=with_mask(base["request"]["df"]))
        write_case(case_dir, bundle, "masked", request, nf.predict(**request_frames(request, nf.freq)))
    return 0


if __name__ == "__main__":
    sys.exit(main())
