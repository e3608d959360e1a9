"""docs/contract.md, asserted identically against both services (see conftest.py)."""

from __future__ import annotations

import ast
import copy
import hashlib
import json
import math
import re
import struct
from datetime import date, timedelta
from pathlib import Path

import pytest
import yaml
from conftest import BUNDLES, CASES, MAX_BODY_BYTES, MAX_SERIES, REPO
from jsonschema import Draft202012Validator
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012
from safetensors.numpy import load_file as load_safetensors

CASE_FILES = sorted(CASES.glob("*.json"))
BUNDLE_NAMES = sorted(p.name for p in BUNDLES.iterdir() if p.is_dir() and not p.name.startswith("."))
# Written from the Rust `ErrorCode` enum (inference/forecast/src/error.rs; a
# Rust test fails while the file is stale): the one list of codes.
ERROR_CODES = json.loads((REPO / "docs" / "error-codes.json").read_text())
ALL_CODES = {row["code"] for row in ERROR_CODES}
PLAIN = "mlp_d_standard"  # freq D, no exogenous
EXOG_CASE = "mlp_exog__shortmix"  # futr, hist and static exogenous
INT_BUNDLE = "mlp_int_robust"  # integer ds


OPENAPI = yaml.safe_load((REPO / "docs" / "openapi.yaml").read_text())
OPENAPI_URI = "urn:neuro-divergent:openapi"
_REGISTRY = Registry().with_resource(OPENAPI_URI, Resource.from_contents(OPENAPI, default_specification=DRAFT202012))


def openapi_validator(pointer: str) -> Draft202012Validator:
    """A validator for the schema at a JSON pointer into docs/openapi.yaml."""
    return Draft202012Validator({"$ref": f"{OPENAPI_URI}#{pointer}"}, registry=_REGISTRY)


def _escape(segment: str) -> str:
    return segment.replace("~", "~0").replace("/", "~1")


def assert_documented(resp) -> None:
    """The response's status and JSON body are what docs/openapi.yaml says."""
    path, method, status = resp.request.url.path, resp.request.method.lower(), resp.status_code
    op = OPENAPI["paths"].get(path, {}).get(method)
    if op is None:
        name = {404: "NotFound", 405: "MethodNotAllowed"}.get(status)
        assert name, f"{method.upper()} {path} answered {status}, not 404/405"
        assert path not in OPENAPI["paths"] or status == 405
        pointer = f"/components/responses/{name}"
    else:
        assert str(status) in op["responses"], f"{status} is not documented for {method.upper()} {path}"
        ref = op["responses"][str(status)].get("$ref")
        pointer = ref[1:] if ref else f"/paths/{_escape(path)}/{method}/responses/{status}"
    if not resp.headers.get("content-type", "").startswith("application/json"):
        return
    errors = list(openapi_validator(f"{pointer}/content/application~1json/schema").iter_errors(resp.json()))
    assert not errors, f"{method.upper()} {path} {status} body breaks docs/openapi.yaml: {errors[0].message}"


def close(a: float, b: float) -> bool:
    return abs(a - b) <= 1e-4 + 1e-5 * abs(b)


def load_case(name: str) -> dict:
    path = CASES / f"{name}.json"
    if not path.is_file():
        pytest.fail(f"golden case {path} is missing (python/make_fixtures.py writes it)")
    return json.loads(path.read_text())


def history(n: int = 20, uid="s1", start: date = date(2024, 1, 1)) -> list[dict]:
    return [{"unique_id": uid, "ds": (start + timedelta(days=i)).isoformat(), "y": 100.0 + (i % 7)}
            for i in range(n)]


def predict(service, body=None, *, model=PLAIN, raw: bytes | None = None, headers=None):
    params = {"model": model} if model is not None else None
    if raw is None:
        raw = json.dumps(body, allow_nan=True).encode()
    hdrs = {"content-type": "application/json", **(headers or {})}
    return service.client.post("/predict", params=params, content=raw, headers=hdrs)


def assert_error(resp, status: int, code: str) -> None:
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].split(";")[0].strip() == "application/json"
    body = resp.json()
    assert set(body) == {"error"}, body
    assert set(body["error"]) == {"code", "message"}, body
    assert body["error"]["code"] == code, body
    assert code in ALL_CODES
    assert isinstance(body["error"]["message"], str) and body["error"]["message"].strip(), body
    assert_documented(resp)


# ------------------------------------------------------------- golden cases

@pytest.mark.parametrize("case_file", CASE_FILES, ids=[p.stem for p in CASE_FILES])
def test_golden_case(service, case_file: Path):
    case = json.loads(case_file.read_text())
    resp = predict(service, case["request"], model=case["bundle"])
    assert resp.status_code == 200, resp.text[:500]
    assert_documented(resp)
    got, want = resp.json(), case["expected"]
    assert set(got) == {"model", "predictions"}
    assert got["model"] == want["model"] == case["bundle"]
    # The bundle's id_col and time_col come first, as nf.predict writes them
    # (unique_id, ds unless the bundle was fitted with other names).
    idc, tc = list(want["predictions"][0])[:2]
    keys = lambda rows: [(r[idc], r[tc]) for r in rows]  # noqa: E731
    assert keys(got["predictions"]) == keys(want["predictions"])
    for g, w in zip(got["predictions"], want["predictions"]):
        # nf.predict's column order: ids, then per model its outputs in order.
        assert list(g) == list(w), (list(g), list(w))
        assert type(g[idc]) is type(w[idc]) and type(g[tc]) is type(w[tc])
        for col in set(w) - {idc, tc}:
            assert isinstance(g[col], (int, float)) and math.isfinite(g[col])
            assert close(g[col], w[col]), (g[idc], g[tc], col, g[col], w[col])


def test_golden_cases_exist():
    assert len(CASE_FILES) > 0 and len(BUNDLE_NAMES) > 1


# ------------------------------------------------------------- bundle selection

def test_model_query_selects_bundle(service):
    body = load_case(f"{PLAIN}__tail")["request"]
    for name, column in ((PLAIN, "MLP"), ("dlinear_d_identity", "DLinear")):
        resp = predict(service, body, model=name)
        assert resp.status_code == 200, resp.text[:500]
        assert resp.json()["model"] == name
        assert all(column in row for row in resp.json()["predictions"])


def test_model_required_when_several_bundles(service):
    assert_error(predict(service, {"df": history()}, model=None), 400, "model_required")


def test_unknown_model(service):
    assert_error(predict(service, {"df": history()}, model="no_such_bundle"), 404, "unknown_model")


def test_charset_parameter_accepted(service):
    resp = predict(service, {"df": history()}, headers={"content-type": "application/json; charset=utf-8"})
    assert resp.status_code == 200, resp.text[:500]


def test_rows_in_any_order_and_sorted_output(service):
    rows = history(30, "b") + history(25, "a", start=date(2024, 1, 3))
    resp = predict(service, {"df": list(reversed(rows))})
    assert resp.status_code == 200, resp.text[:500]
    preds = resp.json()["predictions"]
    assert [(r["unique_id"], r["ds"]) for r in preds] == sorted((r["unique_id"], r["ds"]) for r in preds)
    assert preds[0] == {**preds[0], "unique_id": "a", "ds": "2024-01-28T00:00:00"}
    assert len(preds) == 2 * 7


# ------------------------------------------------------------- request errors

def _set(rows, i, **changes):
    rows = copy.deepcopy(rows)
    rows[i].update(changes)
    return rows


def _drop(rows, i, key):
    rows = copy.deepcopy(rows)
    del rows[i][key]
    return rows


ROW = '{"unique_id": "s1", "ds": "2024-01-01", "y": %s}'
BAD_JSON = {
    "truncated": b'{"df": [',
    # Both parsers stop at 128 levels (serde_json's limit).
    "deep_nesting": ('{"df": [{"unique_id": "s1", "ds": "2024-01-01", "y": 1.0, "x": ' + "[" * 200 + "1" + "]" * 200
                     + "}]}").encode(),
    "nan_token": (ROW % "NaN").encode(),
    "infinity_token": ('{"df": [%s]}' % (ROW % "Infinity")).encode(),
    "minus_infinity_token": ('{"df": [%s]}' % (ROW % "-Infinity")).encode(),
    "float_overflow": ('{"df": [%s]}' % (ROW % "1e999")).encode(),
    "integer_overflow": ('{"df": [%s]}' % (ROW % ("9" * 400))).encode(),
    "not_utf8": b'{"df": [{"unique_id": "\xff", "ds": "2024-01-01", "y": 1}]}',
    "empty_body": b"",
    "trailing_garbage": b'{"df": []} x',
    "single_quotes": b"{'df': []}",
}


@pytest.mark.parametrize("name", list(BAD_JSON))
def test_malformed_json(service, name):
    assert_error(predict(service, raw=BAD_JSON[name]), 400, "malformed_json")


H = history()
HM = [{**r, "available_mask": 1} for r in H]
INVALID_REQUEST = {
    "body_array": [],
    "body_string": "df",
    "df_missing": {},
    "df_missing_futr_given": {"futr_df": []},
    "df_not_array": {"df": {"unique_id": "s1"}},
    "df_null": {"df": None},
    "row_not_object": {"df": [1.0] + H[1:]},
    "row_array": {"df": [["s1", "2024-01-01", 1.0]] + H[1:]},
    "unknown_top_level_key": {"df": H, "horizon": 7},
    "futr_df_not_array": {"df": H, "futr_df": "x"},
    "static_df_not_array": {"df": H, "static_df": {"unique_id": "s1"}},
    "y_string": {"df": _set(H, 3, y="101.5")},
    "y_bool": {"df": _set(H, 3, y=True)},
    "y_object": {"df": _set(H, 3, y={"v": 1})},
    "unique_id_float": {"df": _set(H, 0, unique_id=1.5)},
    "unique_id_bool": {"df": _set(H, 0, unique_id=False)},
    "unique_id_null": {"df": _set(H, 0, unique_id=None)},
    "ds_null": {"df": _set(H, 0, ds=None)},
    "ds_array": {"df": _set(H, 0, ds=[2024, 1, 1])},
    "h_string": {"df": H, "h": "7"},
    "h_float": {"df": H, "h": 7.5},
    "h_bool": {"df": H, "h": True},
    "h_beyond_int64": {"df": H, "h": 2**64},
    "level_string": {"df": H, "level": "80"},
    "quantiles_of_strings": {"df": H, "quantiles": ["0.1"]},
}


@pytest.mark.parametrize("name", list(INVALID_REQUEST))
def test_invalid_request(service, name):
    assert_error(predict(service, INVALID_REQUEST[name]), 400, "invalid_request")


UNPROCESSABLE = {
    "empty_df": ({"df": []}, "empty_df"),
    "missing_y": ({"df": _drop(H, 5, "y")}, "missing_column"),
    "missing_ds": ({"df": _drop(H, 5, "ds")}, "missing_column"),
    "missing_unique_id": ({"df": _drop(H, 5, "unique_id")}, "missing_column"),
    "null_y": ({"df": _set(H, 5, y=None)}, "non_finite_value"),
    "y_beyond_float32": ({"df": _set(H, 5, y=1e39)}, "non_finite_value"),  # the models compute in float32
    "available_mask_two": ({"df": _set(HM, 4, available_mask=2)}, "invalid_value"),  # 0 or 1
    "available_mask_half": ({"df": _set(HM, 4, available_mask=0.5)}, "invalid_value"),
    "available_mask_null": ({"df": _set(HM, 4, available_mask=None)}, "non_finite_value"),
    # NeuralForecast: "sample_weight column must be non-negative".
    "sample_weight_negative": ({"df": _set([{**r, "sample_weight": 1.0} for r in H], 4, sample_weight=-0.5)},
                               "invalid_value"),
    # NeuralForecast: "Found missing values in ['available_mask']".
    "available_mask_in_one_row": ({"df": _set(H, 4, available_mask=1)}, "missing_column"),
    "ds_not_a_date": ({"df": _set(H, 4, ds="yesterday")}, "invalid_ds"),
    "ds_bad_month": ({"df": _set(H, 4, ds="2024-13-01")}, "invalid_ds"),
    "ds_bad_day": ({"df": _set(H, 4, ds="2023-02-29")}, "invalid_ds"),
    "ds_timezone": ({"df": _set(H, 4, ds="2024-01-05T00:00:00Z")}, "invalid_ds"),
    "ds_offset": ({"df": _set(H, 4, ds="2024-01-05T00:00:00+02:00")}, "invalid_ds"),
    "ds_mixed_kinds": ({"df": _set(H, 4, ds=1704412800)}, "invalid_ds"),
    "ds_float": ({"df": _set(H, 4, ds=20240105.5)}, "invalid_ds"),
    "unique_id_mixed_kinds": ({"df": _set(H, 4, unique_id=1)}, "invalid_ds"),
    "duplicate_rows": ({"df": H + [dict(H[3], y=1.0)]}, "duplicate_rows"),
    "h_zero": ({"df": H, "h": 0}, "invalid_horizon"),
    "h_negative": ({"df": H, "h": -3}, "invalid_horizon"),
    "h_above_100x": ({"df": H, "h": 10**6}, "invalid_horizon"),
    # The horizon is checked before the rows' meaning, after their types.
    "h_zero_and_empty_df": ({"df": [], "h": 0}, "invalid_horizon"),
}


@pytest.mark.parametrize("name", list(UNPROCESSABLE))
def test_unprocessable(service, name):
    body, code = UNPROCESSABLE[name]
    assert_error(predict(service, body), 422, code)


def test_datetime_spellings_accepted(service):
    rows = [dict(r, ds=r["ds"] + (" 00:00:00" if i % 2 else "T00:00:00")) for i, r in enumerate(H)]
    resp = predict(service, {"df": rows})
    assert resp.status_code == 200, resp.text[:500]
    assert resp.json() == predict(service, {"df": H}).json()


def test_integer_ds_bundle(service):
    rows = [{"unique_id": 7, "ds": 100 + i, "y": 10.0 + (i % 5)} for i in range(12)]
    resp = predict(service, {"df": rows}, model=INT_BUNDLE)
    assert resp.status_code == 200, resp.text[:500]
    preds = resp.json()["predictions"]
    assert [(r["unique_id"], r["ds"]) for r in preds] == [(7, 112)]
    assert_error(predict(service, {"df": H}, model=INT_BUNDLE), 422, "invalid_ds")
    assert_error(predict(service, {"df": _set(rows, 3, ds=103.5)}, model=INT_BUNDLE), 422, "invalid_ds")
    assert_error(predict(service, {"df": _set(rows, 3, ds=2**63)}, model=INT_BUNDLE), 422, "invalid_ds")
    assert_error(predict(service, {"df": rows}, model=PLAIN), 422, "invalid_ds")


# ------------------------------------------------------------- exogenous

def _exog_body() -> tuple[str, dict]:
    case = load_case(EXOG_CASE)
    return case["bundle"], case["request"]


def _next_step(futr_rows: list[dict]) -> dict:
    """A futr_df row one day past the last one of its series (the bundle is daily)."""
    last = max(futr_rows, key=lambda r: (r["unique_id"], r["ds"]))
    ds = (date.fromisoformat(last["ds"][:10]) + timedelta(days=1)).isoformat()
    return dict(last, ds=ds)


def test_exogenous_errors(service):
    bundle, body = _exog_body()
    futr_col = next(k for k in body["futr_df"][0] if k not in ("unique_id", "ds"))
    stat_col = next(k for k in body["static_df"][0] if k != "unique_id")
    checks = {
        "futr_df_absent": ({k: v for k, v in body.items() if k != "futr_df"}, "invalid_exogenous"),
        "futr_df_short": (dict(body, futr_df=body["futr_df"][:-1]), "invalid_exogenous"),
        "futr_df_empty": (dict(body, futr_df=[]), "invalid_exogenous"),
        "static_df_absent": ({k: v for k, v in body.items() if k != "static_df"}, "invalid_exogenous"),
        "static_df_missing_series": (dict(body, static_df=body["static_df"][1:]), "invalid_exogenous"),
        "static_df_unknown_series": (
            dict(body, static_df=body["static_df"] + [dict(body["static_df"][0], unique_id="zz")]),
            "invalid_exogenous"),
        "futr_df_row_lacks_column": (dict(body, futr_df=_drop(body["futr_df"], 0, futr_col)), "missing_column"),
        "df_row_lacks_futr_history": (dict(body, df=_drop(body["df"], 0, futr_col)), "missing_column"),
        "static_df_row_lacks_column": (dict(body, static_df=_drop(body["static_df"], 0, stat_col)),
                                       "missing_column"),
        "futr_df_null": (dict(body, futr_df=_set(body["futr_df"], 0, **{futr_col: None})), "non_finite_value"),
        "df_exog_null": (dict(body, df=_set(body["df"], 0, **{futr_col: None})), "non_finite_value"),
        "static_null": (dict(body, static_df=_set(body["static_df"], 0, **{stat_col: None})), "non_finite_value"),
        "futr_df_duplicate": (dict(body, futr_df=body["futr_df"] + [body["futr_df"][0]]), "duplicate_rows"),
    }
    assert predict(service, body, model=bundle).status_code == 200
    failures = []
    for name, (b, code) in checks.items():
        resp = predict(service, b, model=bundle)
        try:
            assert_error(resp, 422, code)
        except AssertionError as e:
            failures.append(f"{name}: {e}")
    assert not failures, "\n".join(failures)


def _with_unused(rows, **extra):
    return [{**r, **extra} for r in rows]


# What nf.predict takes in a column no model reads: df converts every column
# to float32 (numbers, booleans, numeric strings), static_df every column to a
# float tensor, futr_df keeps only what it needs (anything else is dropped).
UNUSED = {
    "df": {"price": 1.5, "count": 3, "flag": True, "code": "42", "sample_weight": 0.5},
    "futr_df": {"price": 1.5, "note": "promo", "flag": True, "tags": ["a"], "meta": {"k": 1}, "gap": None},
    "static_df": {"area": 2.5, "rank": 1},
}
# ... and what it refuses there (first line of its error).
UNUSED_REFUSED = {
    "df_text": ("df", {"note": "promo"}, 400, "invalid_request"),  # could not convert string to float
    "df_object": ("df", {"meta": {"k": 1}}, 400, "invalid_request"),
    "df_null": ("df", {"gap": None}, 422, "non_finite_value"),  # Found missing values in ['gap']
    "static_df_text": ("static_df", {"region": "north"}, 400, "invalid_request"),
    "static_df_ds": ("static_df", {"ds": "2024-01-01"}, 400, "invalid_request"),
    "static_df_null": ("static_df", {"gap": None}, 422, "non_finite_value"),
}


def test_columns_no_model_uses_are_ignored(service):
    """As nf.predict: a column no model reads changes nothing when NF takes
    its values (a hist_exog column in futr_df, an all-ones available_mask
    included), and is refused where NF refuses it."""
    bundle, body = _exog_body()
    futr_col = next(k for k in body["futr_df"][0] if k not in ("unique_id", "ds"))
    df_only = [k for k in body["df"][0] if k not in body["futr_df"][0] and k != "y"]
    base = predict(service, body, model=bundle)
    assert base.status_code == 200, base.text[:500]
    variants = {
        "df": dict(body, df=_with_unused(body["df"], **UNUSED["df"], available_mask=1)),
        "futr_df": dict(body, futr_df=_with_unused(body["futr_df"], **UNUSED["futr_df"], **{k: 0.0 for k in df_only})),
        "static_df": dict(body, static_df=_with_unused(body["static_df"], **UNUSED["static_df"])),
        "one_row_only": dict(body, df=_set(body["df"], 2, extra=7.0)),
        # futr_df rows nf.predict drops ("Dropped N unused rows from futr_df").
        "futr_df_extra_step": dict(body, futr_df=body["futr_df"] + [_next_step(body["futr_df"])]),
        "futr_df_unknown_series": dict(body, futr_df=body["futr_df"] + [dict(body["futr_df"][0], unique_id="zz")]),
    }
    for name, variant in variants.items():
        r = predict(service, variant, model=bundle)
        assert r.status_code == 200, (name, r.text[:500])
        assert r.json() == base.json(), name
    plain = predict(service, {"df": H}, model=PLAIN)
    r = predict(service, {"df": _with_unused(H, **UNUSED["df"])}, model=PLAIN)
    assert r.status_code == 200 and r.json() == plain.json()
    for name, (table, extra, status, code) in UNUSED_REFUSED.items():
        try:
            assert_error(predict(service, dict(body, **{table: _set(body[table], 1, **extra)}), model=bundle),
                         status, code)
        except AssertionError as e:
            raise AssertionError(name) from e
    # A column a model does read keeps its type check.
    assert_error(predict(service, dict(body, futr_df=_set(body["futr_df"], 0, **{futr_col: "warm"})), model=bundle),
                 400, "invalid_request")


def test_level_and_quantiles_as_nf_predict(service):
    """A point-loss model without conformal intervals: nf.predict raises
    (422 invalid_level); an MQLoss model ignores both; both together: 422."""
    for body in ({"df": H, "level": [80]}, {"df": H, "quantiles": [0.1, 0.9]},
                 {"df": H, "level": [80], "quantiles": [0.5]}):
        assert_error(predict(service, body, model=PLAIN), 422, "invalid_level")
    case = load_case("mlp_me_mq__tail")
    base = predict(service, case["request"], model="mlp_me_mq")
    assert base.status_code == 200, base.text[:300]
    for extra in ({"level": [80, 95]}, {"quantiles": [0.1]}, {"level": None}):
        r = predict(service, dict(case["request"], **extra), model="mlp_me_mq")
        assert r.status_code == 200 and r.json() == base.json(), (extra, r.text[:300])
    assert_error(predict(service, dict(case["request"], level=[80], quantiles=[0.5]), model="mlp_me_mq"),
                 422, "invalid_level")


def test_conformal_intervals_refused_where_nf_predict_raises(service):
    """A bundle fitted with prediction_intervals (golden cases hold the
    numbers): nf.predict pairs its conformity scores with the request's
    series by position (another series count fails its reshape), evaluates
    them with np.quantile (a cut outside [0, 1] or none fails), and never
    forecasts past the calibrated horizon, even without level."""
    bundle = "mlp_d_conformal_error"
    body = load_case(f"{bundle}__level")["request"]
    two = [r for r in body["df"] if r["unique_id"] != "s3"]
    assert_error(predict(service, dict(body, df=two), model=bundle), 422, "invalid_series")
    r = predict(service, {"df": two}, model=bundle)
    assert r.status_code == 200 and "MLP-lo-80" not in r.json()["predictions"][0], r.text[:300]
    for extra in ({"level": [120]}, {"level": []}, {"quantiles": [1.5]}, {"level": [-101]}):
        assert_error(predict(service, dict(body, **extra), model=bundle), 422, "invalid_level")
    for extra in ({"h": 8}, {"h": 8, "level": None}):
        assert_error(predict(service, dict(body, **extra), model=bundle), 422, "invalid_horizon")
    # What numpy does take, nf.predict answers: the level names the columns as given.
    r = predict(service, dict(body, level=[100, 0.5]), model=bundle)
    assert r.status_code == 200, r.text[:300]
    assert list(r.json()["predictions"][0])[2:] == ["MLP", "MLP-lo-100", "MLP-lo-0.5", "MLP-hi-0.5", "MLP-hi-100"]


def test_multivariate_needs_its_trained_series(service):
    case = load_case("mlpmv_ms_minmax__tail")
    body = case["request"]
    keep = sorted({r["unique_id"] for r in body["df"]})[:-1]
    fewer = dict(body, df=[r for r in body["df"] if r["unique_id"] in keep])
    assert_error(predict(service, fewer, model=case["bundle"]), 422, "invalid_series")


def test_horizon_above_the_bundles_needs_recursive_prediction(service):
    """NeuralForecast cannot predict recursively with historic exogenous;
    future exogenous beyond the bundle's h are refused by the contract."""
    case = load_case(EXOG_CASE)
    body = dict(case["request"], h=100)
    assert_error(predict(service, body, model=case["bundle"]), 422, "invalid_horizon")
    # Below it is fine (golden cases cover the numbers).
    r = predict(service, dict(case["request"], h=1), model=case["bundle"])
    assert r.status_code == 200, r.text
    n_series = len({row["unique_id"] for row in case["request"]["df"]})
    assert len(r.json()["predictions"]) == n_series


def test_series_per_request_are_bounded(service):
    def body(n):
        return {"df": [{"unique_id": f"s{i}", "ds": f"2024-01-{d:02d}", "y": float(i + d)}
                       for i in range(n) for d in range(1, 4)]}
    r = predict(service, body(MAX_SERIES))
    assert r.status_code == 200, r.text
    assert len(r.json()["predictions"]) == MAX_SERIES * 7
    assert_error(predict(service, body(MAX_SERIES + 1)), 422, "too_many_series")


def test_boxcox_refuses_negative_values(service):
    case = load_case("dlinear_me_air__tail")
    body = case["request"]
    neg = dict(body, df=[dict(r, y=-abs(r["y"])) if i == 0 else r for i, r in enumerate(body["df"])])
    assert_error(predict(service, neg, model=case["bundle"]), 422, "invalid_value")


# ------------------------------------------------------------- transport errors

@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("POST", "/v1/predict"), ("GET", "/predict/extra"),
                                         ("GET", "/")])
def test_not_found(service, method, path):
    assert_error(service.client.request(method, path), 404, "not_found")


@pytest.mark.parametrize("method,path", [("GET", "/predict"), ("PUT", "/predict"), ("POST", "/health"),
                                         ("DELETE", "/models"), ("POST", "/ready"), ("POST", "/metrics")])
def test_method_not_allowed(service, method, path):
    assert_error(service.client.request(method, path), 405, "method_not_allowed")


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded", None])
def test_unsupported_media_type(service, content_type):
    headers = {"content-type": content_type} if content_type else {}
    raw = json.dumps({"df": H}).encode()
    resp = service.client.post("/predict", params={"model": PLAIN}, content=raw, headers=headers)
    if content_type is None:  # httpx adds no content-type for raw bytes
        assert "content-type" not in resp.request.headers
    assert_error(resp, 415, "unsupported_media_type")


def _padded(size: int) -> bytes:
    """A valid body of exactly `size` bytes (JSON allows trailing whitespace)."""
    raw = json.dumps({"df": H}).encode()
    assert len(raw) <= size
    return raw + b" " * (size - len(raw))


def test_body_at_limit_accepted(service):
    resp = predict(service, raw=_padded(MAX_BODY_BYTES))
    assert resp.status_code == 200, resp.text[:500]


def test_body_too_large(service):
    assert_error(predict(service, raw=_padded(MAX_BODY_BYTES + 1)), 413, "body_too_large")


def test_body_too_large_chunked(service):
    raw = _padded(MAX_BODY_BYTES + 1)
    chunks = (raw[i:i + 16384] for i in range(0, len(raw), 16384))  # no content-length
    resp = service.client.post("/predict", params={"model": PLAIN}, content=chunks,
                               headers={"content-type": "application/json"})
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "body_too_large")


# ------------------------------------------------------------- GET endpoints

def test_health(service):
    resp = service.client.get("/health")
    assert resp.status_code == 200 and resp.json() == {"status": "ok"}
    assert_documented(resp)


def test_ready(service):
    resp = service.client.get("/ready")
    assert resp.status_code == 200 and resp.json() == {"status": "ready"}
    assert_documented(resp)


def documented_metrics(kind: str) -> dict[str, str]:
    """Metric name -> type as each service documents it: the Rust service's table in
    docs/service.md ("## Metrics"), the Python reference's docstring of its metrics module."""
    if kind == "rust":
        section = (REPO / "docs" / "service.md").read_text().split("## Metrics", 1)[1].split("\n## ", 1)[0]
        out = {}
        for line in section.splitlines():
            cells = [c.strip() for c in line.strip().strip("|").split("|")]
            if len(cells) < 2 or not cells[0].startswith("`"):
                continue
            for name in re.findall(r"`([^`]+)`", cells[0]):
                out["neuro_divergent" + name if name.startswith("_") else name] = cells[1]
        return out
    module = REPO / "python" / "reference_service" / "metrics.py"
    doc = ast.get_docstring(ast.parse(module.read_text())) or ""
    return {m[1]: m[2] for m in re.finditer(r"^\s*(nd_\w+)(?:\{[^}]*\})?\s+(\w+)", doc, re.M)}


def exposed_metrics(resp) -> dict[str, str]:
    """Family name -> type of a /metrics answer, read with prometheus_client's parser for its
    format (OpenMetrics names a counter's family without `_total`)."""
    if resp.headers["content-type"].startswith("application/openmetrics-text"):
        from prometheus_client.openmetrics.parser import text_string_to_metric_families
    else:
        from prometheus_client.parser import text_string_to_metric_families
    return {f.name: f.type for f in text_string_to_metric_families(resp.text)}


def test_metrics(service):
    """Every metric the service documents is exposed with its type, after a prediction and
    an error have been counted."""
    service.client.get("/health")
    assert predict(service, {"df": []}).status_code == 422
    assert predict(service, {"df": history()}).status_code == 200
    resp = service.client.get("/metrics")
    assert resp.status_code == 200
    # Prometheus text 0.0.4 (Python) or OpenMetrics text (Rust, prometheus-client).
    assert resp.headers["content-type"].startswith(("text/plain", "application/openmetrics-text"))
    documented = documented_metrics(service.kind)
    assert len(documented) >= 6, documented

    def families(metrics: dict[str, str]) -> dict[str, str]:
        return {name.removesuffix("_total") if typ == "counter" else name: typ for name, typ in metrics.items()}

    want, got = families(documented), families(exposed_metrics(resp))
    assert got == want, (f"{service.kind}: undocumented {sorted(got.keys() - want.keys())}, "
                         f"missing {sorted(want.keys() - got.keys())}, "
                         f"types {[(k, want[k], got[k]) for k in want.keys() & got.keys() if want[k] != got[k]]}")


def contract_hash(bundle: Path) -> str:
    """docs/contract.md: sha256 over (name, 0x00, u64 LE size, bytes) of every
    regular file directly in the bundle, sorted by name bytewise."""
    h = hashlib.sha256()
    for name in sorted(p.name.encode() for p in bundle.iterdir() if p.is_file()):
        data = (bundle / name.decode()).read_bytes()
        h.update(name + b"\x00" + struct.pack("<Q", len(data)) + data)
    return "sha256:" + h.hexdigest()


def safetensors_metadata(path: Path) -> dict:
    with open(path, "rb") as f:
        (n,) = struct.unpack("<Q", f.read(8))
        return json.loads(f.read(n))["__metadata__"]


def expected_bundle(name: str) -> dict:
    """What /models must say, read straight from the files NeuralForecast wrote."""
    bundle = BUNDLES / name
    config = json.loads((bundle / "configuration.json").read_text())["configuration"]
    models = []
    # NeuralForecast.load order: model files sorted by name.
    for f in sorted(p.name for p in bundle.glob("*.safetensors") if p.name != "configuration.safetensors"):
        meta = safetensors_metadata(bundle / f)
        hp = json.loads(meta["hyper_parameters"])
        models.append({"alias": f[: -len(".safetensors")].rsplit("_", 1)[0], "class": meta["model_class"],
                       "input_size": hp["input_size"]})
    pi = config.get("prediction_intervals")
    intervals = None
    if pi is not None:
        scores = [c for c in config["_cs_df"]["columns"] if c[1]["dtype"].startswith("float")]
        sidecar = load_safetensors(bundle / "configuration.safetensors")
        n_scores = len(sidecar[scores[0][1]["data"]["key"]])
        intervals = {"method": pi["method"], "n_windows": pi["n_windows"], "step_size": pi["step_size"],
                     "n_series": n_scores // (pi["n_windows"] * config["h"])}
    return {"name": name, "content_hash": contract_hash(bundle), "h": config["h"], "freq": config["freq"],
            "intervals": intervals, "models": models}


def test_models(service):
    resp = service.client.get("/models")
    assert resp.status_code == 200
    assert_documented(resp)
    listed = resp.json()["models"]
    assert [b["name"] for b in listed] == BUNDLE_NAMES
    for got in listed:
        want = expected_bundle(got["name"])
        assert {k: got[k] for k in ("name", "content_hash", "h", "freq")} == \
            {k: want[k] for k in ("name", "content_hash", "h", "freq")}
        assert [{k: m[k] for k in ("alias", "class", "input_size")} for m in got["models"]] == want["models"]
        assert all(m["supported"] is True for m in got["models"]), got
        assert got["intervals"] == want["intervals"], got["name"]


# ------------------------------------------------------------- docs/openapi.yaml (no service)

def _contract_table() -> dict[str, int]:
    """code -> status from docs/contract.md's error table."""
    table = {}
    for line in (REPO / "docs" / "contract.md").read_text().splitlines():
        cells = [c.strip() for c in line.strip().strip("|").split("|")]
        if len(cells) == 3 and cells[0].isdigit() and cells[1].startswith("`"):
            table[cells[1].strip("`")] = int(cells[0])
    return table


def _refs(node):
    if isinstance(node, dict):
        if isinstance(node.get("$ref"), str):
            yield node["$ref"]
        for v in node.values():
            yield from _refs(v)
    elif isinstance(node, list):
        for v in node:
            yield from _refs(v)


def test_openapi_document():
    assert OPENAPI["openapi"].startswith("3.1.")
    assert OPENAPI["info"]["title"] and OPENAPI["info"]["version"]
    assert set(OPENAPI["paths"]) == {"/predict", "/models", "/health", "/ready", "/metrics"}
    for schema in OPENAPI["components"]["schemas"].values():
        Draft202012Validator.check_schema(schema)
    resolver = _REGISTRY.resolver(base_uri=OPENAPI_URI)
    for ref in set(_refs(OPENAPI)):
        assert ref.startswith("#/"), ref
        resolver.lookup(ref)  # raises when it does not resolve
    for path, ops in OPENAPI["paths"].items():
        for method, op in ops.items():
            assert op["responses"], (path, method)


def _python_reference_status() -> dict[str, int]:
    """The Python reference service's STATUS table, read without importing
    FastAPI into this process."""
    import ast

    tree = ast.parse((REPO / "python" / "reference_service" / "errors.py").read_text())
    for node in tree.body:
        if isinstance(node, ast.Assign) and any(getattr(t, "id", "") == "STATUS" for t in node.targets):
            return ast.literal_eval(node.value)
    raise AssertionError("python/reference_service/errors.py has no STATUS table")


def test_error_codes_have_one_source():
    """The Rust enum (via docs/error-codes.json), the contract's table, the
    OpenAPI enum and the Python reference's codes are the same list with the
    same statuses, in the same order where there is one."""
    source = {row["code"]: row["status"] for row in ERROR_CODES}
    assert len(source) == len(ERROR_CODES), "a code twice in docs/error-codes.json"
    assert _contract_table() == source
    assert list(_contract_table()) == list(source), "docs/contract.md's table is in another order"
    assert OPENAPI["components"]["schemas"]["ErrorCode"]["enum"] == list(source)
    assert _python_reference_status() == source
    for row in ERROR_CODES:
        assert row["backend_fault"] == (row["status"] >= 500), row


def test_openapi_error_codes_match_contract():
    table = _contract_table()
    assert set(table) == ALL_CODES
    assert set(OPENAPI["components"]["schemas"]["ErrorCode"]["enum"]) == ALL_CODES
    documented = {}
    for status, response in OPENAPI["paths"]["/predict"]["post"]["responses"].items():
        if status == "200":
            continue
        schema = OPENAPI["components"]["responses"][response["$ref"].rsplit("/", 1)[1]]
        code = schema["content"]["application/json"]["schema"]["allOf"][1]["properties"]["error"]["properties"]["code"]
        for c in code.get("enum", [code.get("const")]):
            documented[c] = int(status)
    assert documented == table


def test_openapi_request_schema_is_the_400_layer():
    """Bodies the services reject as invalid_request break the schema; every
    other body in this suite satisfies it."""
    request = openapi_validator("/components/schemas/PredictRequest")
    for name, body in INVALID_REQUEST.items():
        assert not request.is_valid(body), name
    for name, (body, _) in UNPROCESSABLE.items():
        assert request.is_valid(body), name
    for case_file in CASE_FILES:
        case = json.loads(case_file.read_text())
        request.validate(case["request"])
        openapi_validator("/components/schemas/PredictResponse").validate(case["expected"])


def test_categorical_columns(service):
    """A categorical column (NeuralForecast 3.3's cat_exog_list) takes strings
    and any value nf.predict can map (one the fit never saw reads as unseen);
    a string anywhere else stays a 400; /models names the columns and the
    size of their vocabularies."""
    case = load_case("mlp_cat__shortmix")
    body = case["request"]
    unseen = dict(body, futr_df=_set(body["futr_df"], 0, dow="Holiday"), static_df=_set(body["static_df"], 0, store=7))
    r = service.client.post("/predict", params={"model": "mlp_cat"}, json=unseen)
    assert r.status_code == 200, r.text
    assert r.json()["predictions"] != case["expected"]["predictions"]
    for key, col in (("df", "temp"), ("futr_df", "promo"), ("static_df", "size"), ("df", "y")):
        bad = dict(body, **{key: _set(body[key], 0, **{col: "high"})})
        r = service.client.post("/predict", params={"model": "mlp_cat"}, json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", (key, col, r.text)
    for value in ([1], {"a": 1}):
        bad = dict(body, df=_set(body["df"], 0, sky=value))
        r = service.client.post("/predict", params={"model": "mlp_cat"}, json=bad)
        assert r.status_code == 400 and r.json()["error"]["code"] == "invalid_request", r.text
    null = dict(body, df=_set(body["df"], 0, sky=None))
    r = service.client.post("/predict", params={"model": "mlp_cat"}, json=null)
    assert r.status_code == 422 and r.json()["error"]["code"] == "non_finite_value", r.text
    models = {m["name"]: m for m in service.client.get("/models").json()["models"]}
    cat = models["mlp_cat"]
    assert cat["categorical"] == [{"column": "dow", "values": 7}, {"column": "sky", "values": 3},
                                  {"column": "store", "values": 3}]
    assert cat["models"][0]["categorical"] == ["dow", "sky", "store"]
    assert models["mlp_exog"]["categorical"] == []
