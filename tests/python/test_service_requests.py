"""The /predict request checks (python/reference_service/request.py and app.py),
each answer's status and contract error code (docs/contract.md), in process."""

from __future__ import annotations

import json
from typing import Any

import pytest
from conftest import MAX_BODY_BYTES, MAX_SERIES, case, example
from fastapi.testclient import TestClient

PLAIN = "mlp_d_standard"
CAT = "mlp_cat"
JSON = {"content-type": "application/json"}


def post(client: TestClient, body: Any = None, *, raw: bytes | None = None, model: str | None = PLAIN,
         headers: dict[str, str] | None = None):
    content = raw if raw is not None else json.dumps(body).encode()
    params = {"model": model} if model is not None else {}
    return client.post("/predict", params=params, content=content, headers=JSON if headers is None else headers)


def assert_error(resp, status: int, code: str) -> dict:
    assert resp.status_code == status, resp.text[:500]
    assert resp.headers["content-type"].startswith("application/json")
    error = resp.json()["error"]
    assert error["code"] == code, error
    assert error["message"]
    return error


def with_row(rows: list[dict], i: int, **values: Any) -> list[dict]:
    return [dict(r, **values) if j == i else r for j, r in enumerate(rows)]


# ------------------------------------------------------------------ accepted


def test_predict_answers_every_series_for_h_steps(client):
    body = example()
    resp = post(client, body)
    assert resp.status_code == 200, resp.text[:500]
    answer = resp.json()
    assert answer["model"] == PLAIN
    series = {r["unique_id"] for r in body["df"]}
    h = next(m for m in client.get("/models").json()["models"] if m["name"] == PLAIN)["h"]
    assert len(answer["predictions"]) == len(series) * h
    assert {r["unique_id"] for r in answer["predictions"]} == series
    assert all(isinstance(r["MLP"], float) for r in answer["predictions"])


def test_h_below_the_bundle_truncates(client):
    resp = post(client, dict(example(), h=2))
    assert resp.status_code == 200, resp.text[:500]
    assert len(resp.json()["predictions"]) == 2 * 3


def test_categorical_strings_accepted_in_categorical_columns_only(client):
    body = case("mlp_cat__rescaled")["request"]
    unseen = dict(body, futr_df=with_row(body["futr_df"], 0, dow="Holiday"))
    assert post(client, unseen, model=CAT).status_code == 200
    for key, column in (("df", "temp"), ("futr_df", "promo"), ("static_df", "size"), ("df", "y")):
        bad = dict(body, **{key: with_row(body[key], 0, **{column: "high"})})
        assert_error(post(client, bad, model=CAT), 400, "invalid_request")
    bad = dict(body, df=with_row(body["df"], 0, sky=[1]))  # a category is a scalar
    assert_error(post(client, bad, model=CAT), 400, "invalid_request")


# ------------------------------------------------------------------ transport and model selection


@pytest.mark.parametrize("content_type", ["text/plain", "application/x-www-form-urlencoded"])
def test_unsupported_media_type(client, content_type):
    assert_error(post(client, example(), headers={"content-type": content_type}), 415, "unsupported_media_type")


def test_media_type_parameters_are_accepted(client):
    resp = post(client, example(), headers={"content-type": "Application/JSON; charset=utf-8"})
    assert resp.status_code == 200, resp.text[:500]


def test_body_too_large(client):
    raw = json.dumps(example()).encode()
    assert_error(post(client, raw=raw + b" " * (MAX_BODY_BYTES + 1 - len(raw))), 413, "body_too_large")


def test_body_at_the_limit_is_accepted(client):
    raw = json.dumps(example()).encode()
    assert post(client, raw=raw + b" " * (MAX_BODY_BYTES - len(raw))).status_code == 200


def test_body_too_large_without_content_length(client):
    raw = json.dumps(example()).encode() + b" " * MAX_BODY_BYTES
    chunks = (raw[i:i + 4096] for i in range(0, len(raw), 4096))
    resp = client.post("/predict", params={"model": PLAIN}, content=chunks, headers=JSON)
    assert "content-length" not in resp.request.headers
    assert_error(resp, 413, "body_too_large")


def test_unknown_model(client):
    assert_error(post(client, example(), model="no_such_bundle"), 404, "unknown_model")


def test_model_required_with_several_bundles(client):
    assert_error(post(client, example(), model=None), 400, "model_required")


# ------------------------------------------------------------------ 400: JSON and shape


@pytest.mark.parametrize("raw", [b"{", b'{"df": [}', b'{"df": NaN}', b'{"df": [{"y": Infinity}]}', b"\xff\xfe",
                                 b'{"df": [{"y": 1e999}]}', b"[" * 200 + b"]" * 200])
def test_malformed_json(client, raw):
    assert_error(post(client, raw=raw), 400, "malformed_json")


@pytest.mark.parametrize("body", [
    [],                                         # not an object
    {},                                         # no df
    {"df": {}},                                 # df not an array
    {"df": [1]},                                # a row not an object
    {"df": [], "extra": 1},                     # unknown top-level key
    {"df": [], "h": 1.5},                       # h not an integer
    {"df": [], "level": "80"},                  # level not an array of numbers
    {"df": [{"unique_id": "s1", "ds": "2024-01-01", "y": "1.0"}]},  # y a string
    {"df": [{"unique_id": 1.5, "ds": "2024-01-01", "y": 1.0}]},     # unique_id neither string nor integer
    {"df": [{"unique_id": "s1", "ds": "2024-01-01", "y": True}]},   # a boolean is not a number
])
def test_invalid_request(client, body):
    assert_error(post(client, body), 400, "invalid_request")


# ------------------------------------------------------------------ 422: content


def test_empty_df(client):
    assert_error(post(client, {"df": []}), 422, "empty_df")


def test_missing_column(client):
    body = example()
    body["df"] = [{k: v for k, v in r.items() if k != "y"} for r in body["df"]]
    assert_error(post(client, body), 422, "missing_column")


@pytest.mark.parametrize("ds", ["2024-13-01", "yesterday", "2024-01-01T00:00:00Z"])
def test_invalid_ds(client, ds):
    body = example()
    assert_error(post(client, dict(body, df=with_row(body["df"], 0, ds=ds))), 422, "invalid_ds")


def test_null_value(client):
    body = example()
    assert_error(post(client, dict(body, df=with_row(body["df"], 0, y=None))), 422, "non_finite_value")


def test_value_overflowing_float32(client):
    body = example()
    assert_error(post(client, dict(body, df=with_row(body["df"], 0, y=1e39))), 422, "non_finite_value")


def test_duplicate_rows(client):
    body = example()
    assert_error(post(client, dict(body, df=body["df"] + body["df"][:1])), 422, "duplicate_rows")


def test_invalid_horizon(client):
    assert_error(post(client, dict(example(), h=0)), 422, "invalid_horizon")


def test_too_many_series(client):
    body = example()
    series = sorted({r["unique_id"] for r in body["df"]})
    assert len(series) == MAX_SERIES
    extra = [dict(r, unique_id="another") for r in body["df"] if r["unique_id"] == series[0]]
    error = assert_error(post(client, dict(body, df=body["df"] + extra)), 422, "too_many_series")
    assert str(MAX_SERIES) in error["message"]


def test_missing_exogenous(client):
    body = case("mlp_cat__rescaled")["request"]
    assert_error(post(client, {k: v for k, v in body.items() if k != "futr_df"}, model=CAT), 422,
                 "invalid_exogenous")


# ------------------------------------------------------------------ other routes


@pytest.mark.parametrize("method,path", [("GET", "/nope"), ("POST", "/v1/predict"), ("GET", "/")])
def test_not_found(client, method, path):
    assert_error(client.request(method, path), 404, "not_found")


@pytest.mark.parametrize("method,path", [("GET", "/predict"), ("POST", "/health"), ("DELETE", "/models")])
def test_method_not_allowed(client, method, path):
    assert_error(client.request(method, path), 405, "method_not_allowed")


def test_health_ready_models(client):
    assert client.get("/health").json() == {"status": "ok"}
    assert client.get("/ready").json() == {"status": "ready"}
    models = client.get("/models").json()["models"]
    assert [m["name"] for m in models] == sorted(["mlp_d_standard", "mlp_cat"])
    assert all(m["content_hash"].startswith("sha256:") for m in models)
