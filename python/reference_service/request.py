"""The /predict body: JSON parsing, shape checks (400) and content checks (422),
all before NeuralForecast sees a DataFrame. docs/contract.md is the spec.

Checks run in this order; the first failure is the answer:
  malformed_json -> invalid_request -> empty_df -> missing_column ->
  invalid_ds -> non_finite_value -> invalid_value (available_mask) ->
  duplicate_rows -> invalid_exogenous

Columns no model uses are ignored in every table, as nf.predict ignores them.
"""

from __future__ import annotations

import json
import math
import re
from dataclasses import dataclass
from datetime import datetime
from typing import Any, NoReturn, TypeGuard

import numpy as np
import pandas as pd

from .bundles import Bundle
from .errors import ApiError

TABLES = ("df", "futr_df", "static_df")
I64_MIN, I64_MAX = -(2**63), 2**63 - 1
# ISO 8601 date or datetime without timezone: YYYY-MM-DD, then optionally
# [T ]HH:MM, :SS, .fraction (up to ns); ASCII digits only.
_DS = re.compile(r"[0-9]{4}-[0-9]{2}-[0-9]{2}(?:[T ][0-9]{2}:[0-9]{2}(?::[0-9]{2}(?:\.[0-9]{1,9})?)?)?")


# ---------------------------------------------------------------- JSON (400)

def _reject_constant(token: str):
    raise ValueError(f"{token} is not JSON")


def _finite_float(text: str) -> float:
    value = float(text)
    if not math.isfinite(value):
        raise ValueError(f"number {text[:40]} overflows a float64")
    return value


def _bounded_int(text: str) -> int:
    value = int(text)
    float(value)  # OverflowError past float64, as a float64 parser would fail
    return value


MAX_DEPTH = 128  # the Rust service's JSON parser (serde_json) refuses deeper nesting


def _too_deep(raw: bytes) -> bool:
    """Nesting of arrays/objects beyond MAX_DEPTH, outside strings."""
    depth, in_str, esc = 0, False, False
    for b in raw:
        if in_str:
            if esc:
                esc = False
            elif b == 0x5C:  # backslash
                esc = True
            elif b == 0x22:
                in_str = False
        elif b == 0x22:
            in_str = True
        elif b in (0x5B, 0x7B):
            depth += 1
            if depth > MAX_DEPTH:
                return True
        elif b in (0x5D, 0x7D):
            depth -= 1
    return False


def parse_json(raw: bytes) -> Any:
    """RFC 8259 JSON: UTF-8, no NaN/Infinity, no number overflowing a float64,
    nesting at most MAX_DEPTH deep."""
    if _too_deep(raw):
        raise ApiError("malformed_json", f"body is not valid JSON: nesting deeper than {MAX_DEPTH}")
    try:
        return json.loads(
            raw.decode("utf-8"),
            parse_constant=_reject_constant,
            parse_float=_finite_float,
            parse_int=_bounded_int,
        )
    except (ValueError, OverflowError, RecursionError) as e:  # JSONDecodeError, UnicodeDecodeError
        raise ApiError("malformed_json", f"body is not valid JSON: {e}") from None


# ---------------------------------------------------------------- shape (400)

def _invalid(message: str) -> NoReturn:
    raise ApiError("invalid_request", message)


def _is_number(v: Any) -> TypeGuard[int | float]:
    return type(v) in (int, float)  # bool is not a number here


def _is_int(v) -> bool:
    return type(v) is int and I64_MIN <= v <= I64_MAX


AVAILABLE_MASK = "available_mask"  # NeuralForecast's own df column: 1 available, 0 not
SAMPLE_WEIGHT = "sample_weight"  # NeuralForecast's training weight: predict refuses negative ones


def used_columns(bundle: Bundle) -> dict[str, list[str]]:
    """Per table, the columns some model reads (df's `available_mask` too);
    nf.predict ignores every other column, whatever it holds, and so do we."""
    idc, tc, yc = bundle.id_col, bundle.time_col, bundle.target_col
    return {
        "df": list(dict.fromkeys([idc, tc, yc, *bundle.hist_exog, *bundle.futr_exog])),
        "futr_df": [idc, tc, *bundle.futr_exog],
        "static_df": [idc, *bundle.stat_exog],
    }


def _unused_ok(table: str, v) -> bool:
    """A value in a column no model reads that nf.predict still takes: it
    turns every df column into float32 (numbers, booleans, numeric strings)
    and every static_df column into a float tensor; futr_df keeps only the
    columns it needs. null passes here and is refused with the other
    missing values."""
    if table == "futr_df" or v is None or _is_number(v):
        return True
    if table == "df" and isinstance(v, bool):
        return True
    if table == "df" and isinstance(v, str):
        try:
            return not math.isnan(float(v.strip()))
        except ValueError:
            return False
    return False


def check_shape(body: Any, bundle: Bundle) -> dict[str, list[dict] | None]:
    """Types only: the body is an object of known keys, tables are arrays of
    objects, ids/ds are strings or integers, other used values numbers or
    null. Columns no model uses are not checked."""
    used = used_columns(bundle)
    used["df"] = [*used["df"], AVAILABLE_MASK]
    if not isinstance(body, dict):
        _invalid("body must be a JSON object")
    unknown = sorted(set(body) - set(TABLES) - {"h", "level", "quantiles"})
    if unknown:
        _invalid(f"unknown top-level key(s): {', '.join(unknown)}")
    if "df" not in body:
        _invalid("df is required")
    if body.get("h") is not None and not _is_int(body["h"]):
        _invalid("h must be an integer")
    for key in ("level", "quantiles"):
        v = body.get(key)
        if v is not None and not (isinstance(v, list) and all(_is_number(x) for x in v)):
            _invalid(f"{key} must be an array of numbers")
    tables: dict[str, list[dict] | None] = {}
    for key in TABLES:
        rows = body.get(key)
        if rows is None and key != "df":
            tables[key] = None  # absent or null: not given
            continue
        if not isinstance(rows, list):
            _invalid(f"{key} must be an array of objects")
        for i, row in enumerate(rows):
            if not isinstance(row, dict):
                _invalid(f"{key}[{i}] must be an object")
            for col, v in row.items():
                if col not in used[key]:
                    if not _unused_ok(key, v):
                        _invalid(f"{key}[{i}].{col}: no model reads it, but nf.predict converts every {key} "
                                 "column to numbers and refuses this value")
                    continue
                if col == bundle.id_col:
                    if not (isinstance(v, str) or _is_int(v)):
                        _invalid(f"{key}[{i}].{col} must be a string or a 64-bit integer")
                elif col == bundle.time_col:
                    if not (isinstance(v, str) or _is_number(v)):  # a non-integer number is invalid_ds
                        _invalid(f"{key}[{i}].{col} must be a date string or an integer")
                elif col in bundle.categorical:
                    # A category: nf.predict maps any value through the vocabulary.
                    if not (v is None or isinstance(v, (str, bool)) or _is_number(v)):
                        _invalid(f"{key}[{i}].{col} is a categorical column: it takes strings, numbers or booleans")
                elif not (v is None or _is_number(v)):
                    _invalid(f"{key}[{i}].{col} must be a number")
        tables[key] = rows
    return tables


# ---------------------------------------------------------------- content (422)

def _unprocessable(code: str, message: str) -> NoReturn:
    raise ApiError(code, message)


def _implicit_quantile(model) -> bool:
    from neuralforecast.losses.pytorch import HuberIQLoss, IQLoss

    return isinstance(model.loss, (IQLoss, HuberIQLoss))


def _point_models(bundle: Bundle) -> list:
    """Models nf.predict computes conformal intervals for: one output per
    step, not an implicit-quantile loss (the quantile is its input)."""
    return [m for m in bundle.nf.models if len(list(m.loss.output_names)) <= 1 and not _implicit_quantile(m)]


def conformal_cuts(given: dict) -> list[float]:
    """The quantiles of the conformity scores nf.predict evaluates
    (add_conformal_*_intervals after level_to_quantiles)."""
    if "level" in given:
        alphas = [100 - lv for lv in sorted(set(given["level"]))]
        return [a / 200 for a in reversed(alphas)] + [1 - a / 200 for a in alphas]
    return sorted(set(given["quantiles"]))


def requested_intervals(body: dict, bundle: Bundle) -> dict:
    """level / quantiles for nf.predict, as it takes them: refused together;
    a multi-quantile model (MQLoss, HuberMQLoss) ignores them; a point-loss
    model needs the bundle's conformal intervals, and quantiles numpy can
    take (nf.predict raises otherwise). Returns the keyword arguments for
    nf.predict."""
    given = {k: body[k] for k in ("level", "quantiles") if body.get(k) is not None}
    if len(given) == 2:
        _unprocessable("invalid_level", "level and quantiles cannot both be set (as in nf.predict)")
    if not given:
        return {}
    what = next(iter(given))
    if any(_implicit_quantile(m) for m in bundle.nf.models):
        from neuralforecast.utils import level_to_quantiles

        qs = level_to_quantiles(given["level"]) if "level" in given else given["quantiles"]
        bad = [q for q in qs if not 0 <= q <= 1]
        if bad:
            _unprocessable("invalid_level", f"{what} asks for the quantile {bad[0]} of an implicit-quantile model's "
                           "forecasts, outside [0, 1] (a level must be within -100..=100, a quantile within 0..=1)")
    points = _point_models(bundle)
    if not points:
        return given
    if bundle.nf.prediction_intervals is None:
        model = points[0]
        _unprocessable("invalid_level", f"{what}: model {model} was trained with loss {model.loss} and "
                       f"bundle {bundle.name!r} has no prediction intervals, so nf.predict cannot give {what}")
    cuts = conformal_cuts(given)
    if not cuts:
        _unprocessable("invalid_level", f"{what} is empty: nf.predict cannot compute intervals for no level")
    bad = [c for c in cuts if not 0 <= c <= 1]
    if bad:
        _unprocessable("invalid_level", f"{what} asks for the quantile {bad[0]} of the conformity scores, "
                       "outside [0, 1] (a level must be within -100..=100, a quantile within 0..=1)")
    return given


def check_interval_series(bundle: Bundle, intervals: dict, df) -> None:
    """nf.predict pairs the conformity scores with the request's series by
    position (a reshape): intervals need as many series as the scores."""
    if not intervals or bundle.nf.prediction_intervals is None or not _point_models(bundle):
        return
    calibration = bundle.intervals()
    assert calibration is not None  # the bundle has prediction intervals
    want, n = calibration["n_series"], df[bundle.id_col].nunique()
    if n != want:
        _unprocessable(
            "invalid_series",
            f"bundle {bundle.name!r} holds conformity scores for {want} series, which nf.predict pairs "
            f"with the request's series by position: prediction intervals need exactly {want} series, "
            f"the request has {n}",
        )


MAX_HORIZON_FACTOR = 100  # as the Rust service: recursive passes up to 100x the bundle's h


def requested_h(body: dict, bundle: Bundle) -> int | None:
    """The request's horizon (None: the bundle's). Below the bundle's h the
    forecast is truncated; above it NeuralForecast predicts recursively,
    which it cannot do with historic exogenous (and this contract does not
    offer with future exogenous or without a median output)."""
    h = body.get("h")
    if h is None:
        return None
    top = bundle.h * MAX_HORIZON_FACTOR
    if not 1 <= h <= top:
        _unprocessable(
            "invalid_horizon",
            f"h = {h} is outside 1..={top} (bundle {bundle.name!r} forecasts {bundle.h} steps per pass)",
        )
    if h > bundle.h and bundle.nf.prediction_intervals is not None:
        _unprocessable(
            "invalid_horizon",
            f"h = {h} is above bundle {bundle.name!r}'s horizon {bundle.h}: it was fitted with prediction "
            "intervals, and nf.predict does not forecast past the calibrated horizon",
        )
    if h > bundle.h:
        for model in bundle.nf.models:
            names = list(model.loss.output_names)
            why = None
            if model.hist_exog_list:
                why = "historic exogenous"
            elif model.futr_exog_list:
                why = "future exogenous"
            elif len(names) > 1 and "-median" not in names:
                why = "no median output to feed back"
            if why:
                _unprocessable(
                    "invalid_horizon",
                    f"h = {h} is above bundle {bundle.name!r}'s horizon {bundle.h} and model {model} "
                    f"has {why}: recursive prediction is not possible; ask for h <= {bundle.h}",
                )
    return h


def _kind(v) -> str:
    return "string" if isinstance(v, str) else "integer"


def _fits_f32(v) -> bool:
    """Finite once rounded to float32, as the models see it."""
    with np.errstate(over="ignore"):
        return bool(np.isfinite(np.float32(v)))


def _parse_ds(key: str, i: int, v: str) -> datetime:
    if _DS.fullmatch(v):
        try:
            return datetime.fromisoformat(v)
        except ValueError:
            pass
    _unprocessable("invalid_ds", f"{key}[{i}].ds {v!r} is not an ISO date or datetime")


@dataclass
class Frames:
    df: pd.DataFrame
    futr_df: pd.DataFrame | None
    static_df: pd.DataFrame | None


def to_frames(tables: dict[str, list[dict] | None], bundle: Bundle, max_series: int) -> Frames:
    idc, tc = bundle.id_col, bundle.time_col
    df_rows = tables["df"]
    if not df_rows:
        _unprocessable("empty_df", "df has no rows")
    present = {k: rows for k, rows in tables.items() if rows is not None}

    columns = used_columns(bundle)
    given = [(k, rows, columns[k]) for k, rows in present.items()]

    for key, rows, cols in given:
        for i, row in enumerate(rows):
            for c in cols:
                if c not in row:
                    _unprocessable("missing_column", f"{key}[{i}] lacks column {c!r}")

    # One kind of unique_id across all tables, one kind of ds across df and
    # futr_df, and the ds kind the bundle's freq implies.
    id_kind = _kind(df_rows[0][idc])
    for key, rows, _ in given:
        for i, row in enumerate(rows):
            if _kind(row[idc]) != id_kind:
                _unprocessable("invalid_ds", f"{key}[{i}].{idc}: mixed string and integer {idc}")
    ds_kind = "integer" if isinstance(bundle.freq, int) else "string"
    for key, rows, cols in given:
        if tc not in cols:
            continue
        for i, row in enumerate(rows):
            if _kind(row[tc]) != ds_kind:
                want = "integers" if ds_kind == "integer" else "date/datetime strings"
                _unprocessable("invalid_ds", f"{key}[{i}].{tc}: bundle freq {bundle.freq!r} needs {want}")
    for key, rows, cols in given:
        if tc in cols and ds_kind == "integer":
            for i, row in enumerate(rows):
                if not _is_int(row[tc]):
                    _unprocessable("invalid_ds", f"{key}[{i}].{tc} = {row[tc]!r} is not a 64-bit integer")
    ds = {
        key: [row[tc] if ds_kind == "integer" else _parse_ds(key, i, row[tc]) for i, row in enumerate(rows)]
        for key, rows, cols in given
        if tc in cols
    }

    for key, rows, cols in given:
        values = [c for c in cols if c not in (idc, tc)]
        for i, row in enumerate(rows):
            for c in values:
                v = row[c]
                if v is None:
                    _unprocessable("non_finite_value", f"{key}[{i}].{c} is null")
                if c in bundle.categorical:
                    continue
                if not _fits_f32(v):
                    _unprocessable("non_finite_value", f"{key}[{i}].{c} = {v:g} overflows float32")

    for key in ("df", "static_df"):
        for i, row in enumerate(present.get(key, [])):
            for c, v in row.items():
                if v is None and c not in columns[key] and c != AVAILABLE_MASK:
                    _unprocessable("non_finite_value", f"{key}[{i}].{c} is null: NeuralForecast refuses missing "
                                   f"values in every {key} column, even one no model reads")
    with_mask = any(AVAILABLE_MASK in row for row in df_rows)
    for i, row in enumerate(df_rows):
        w = row.get(SAMPLE_WEIGHT)
        if isinstance(w, str):
            _unprocessable("invalid_value", f"df[{i}].{SAMPLE_WEIGHT} is a string: NeuralForecast compares it with 0 "
                           "and refuses it")
        if _is_number(w) and w < 0 and row.get(AVAILABLE_MASK, 1) != 0:
            _unprocessable("invalid_value", f"df[{i}].{SAMPLE_WEIGHT} = {w}: NeuralForecast refuses a negative "
                           "sample_weight")
        if with_mask and AVAILABLE_MASK not in row:
            # NeuralForecast: "Found missing values in ['available_mask']".
            _unprocessable("missing_column", f"df[{i}] lacks {AVAILABLE_MASK}, which other rows have")
        m = row.get(AVAILABLE_MASK, 1)
        if m is None:
            _unprocessable("non_finite_value", f"df[{i}].{AVAILABLE_MASK} is null")
        if m not in (0, 1):
            _unprocessable("invalid_value", f"df[{i}].{AVAILABLE_MASK} = {m}: it must be 1 (available) or 0 "
                           "(unavailable)")

    for key in ("df", "futr_df"):
        if key in ds:
            seen = set()
            for i, (row, t) in enumerate(zip(present[key], ds[key])):
                k = (row[idc], t)
                if k in seen:
                    _unprocessable("duplicate_rows", f"{key}[{i}]: ({row[idc]!r}, {row[tc]!r}) appears twice")
                seen.add(k)

    def frame(key: str) -> pd.DataFrame:
        rows, cols = present[key], columns[key]
        if key == "df" and with_mask:
            cols = [*cols, AVAILABLE_MASK]  # NeuralForecast reads it (scaler statistics, insample mask)
        data: dict[str, Any] = {idc: [r[idc] for r in rows]}
        if key in ds:
            data[tc] = np.array(ds[key], dtype=np.int64) if ds_kind == "integer" else pd.to_datetime(ds[key])
        for c in cols:
            if c in data:
                continue
            if c in bundle.categorical:
                data[c] = pd.Series([r[c] for r in rows], dtype=object)  # mapped by nf.predict
            else:
                data[c] = np.array([r[c] for r in rows], dtype=np.float64)
        return pd.DataFrame(data)

    n_series = len({row[idc] for row in df_rows})
    if n_series > max_series:
        _unprocessable(
            "too_many_series",
            f"df holds {n_series} series; at most {max_series} per request (split the request)",
        )
    df = frame("df")
    futr_df = frame("futr_df") if tables["futr_df"] is not None else None
    static_df = frame("static_df") if tables["static_df"] is not None else None
    _check_exogenous(bundle, df, futr_df, static_df)
    _check_model_constraints(bundle, df)
    return Frames(df, futr_df, static_df)


def _check_model_constraints(bundle: Bundle, df) -> None:
    """What NeuralForecast would only fail on deep inside predict (as a 500)."""
    if bundle.nf.local_scaler_type == "boxcox":
        temporal = [c for c in df.columns if c not in (bundle.id_col, bundle.time_col)]
        if (df[temporal] < 0).any().any():
            _unprocessable("invalid_value", "the Box-Cox local scaler needs non-negative values")
    n = df[bundle.id_col].nunique()
    for model in bundle.nf.models:
        if getattr(model, "MULTIVARIATE", False) and n != model.n_series:
            _unprocessable(
                "invalid_series",
                f"model {model} is multivariate: it forecasts exactly the {model.n_series} series "
                f"it was trained on, together; the request has {n}",
            )


def _check_exogenous(bundle: Bundle, df, futr_df, static_df) -> None:
    """futr_df: at least the h future (unique_id, ds) of every series;
    static_df: exactly one row per series."""
    idc, tc = bundle.id_col, bundle.time_col
    if bundle.futr_exog and futr_df is None:
        _unprocessable("invalid_exogenous", f"futr_df is required: models use {bundle.futr_exog}")
    if bundle.stat_exog and static_df is None:
        _unprocessable("invalid_exogenous", f"static_df is required: models use {bundle.stat_exog}")
    if futr_df is not None:
        expected = bundle.nf.make_future_dataframe(df)
        want = set(zip(expected[idc].tolist(), expected[tc].tolist()))
        got = set(zip(futr_df[idc].tolist(), futr_df[tc].tolist()))
        # Rows beyond the grid, or for series not in df, are ignored: nf.predict drops them.
        if want - got:
            _unprocessable(
                "invalid_exogenous",
                f"futr_df must hold the next {bundle.h} ds of every series: {len(want - got)} missing rows",
            )
    if static_df is not None:
        ids = static_df[idc].tolist()
        if len(ids) != len(set(ids)) or set(ids) != set(df[idc].tolist()):
            _unprocessable("invalid_exogenous", "static_df must hold exactly one row per series of df")
