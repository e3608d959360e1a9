"""What the service says about itself: /openapi.json (the committed
docs/openapi.yaml) and /docs, /metrics (prometheus_client, the names and
labels dashboards and the mesh read), JSON and text log lines."""

from __future__ import annotations

import io
import json
import logging
import re
from collections.abc import Callable

import yaml
from conftest import REPO, SERVED, example
from prometheus_client import CONTENT_TYPE_LATEST
from prometheus_client.metrics_core import Metric
from prometheus_client.parser import text_string_to_metric_families

from reference_service import logs
from reference_service.app import State, create_app
from reference_service.settings import Settings

# ------------------------------------------------------------------ OpenAPI


def test_openapi_json_is_the_committed_document(client):
    resp = client.get("/openapi.json")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("application/json")
    assert resp.json() == yaml.safe_load((REPO / "docs/openapi.yaml").read_text())


def test_docs_is_swagger_ui_on_openapi_json(client):
    resp = client.get("/docs")
    assert resp.status_code == 200
    assert resp.headers["content-type"].startswith("text/html")
    assert "swagger-ui" in resp.text and "/openapi.json" in resp.text


def test_no_other_documentation_routes(client):
    for path in ("/redoc", "/docs/oauth2-redirect", "/openapi.yaml"):
        assert client.get(path).status_code == 404, path


# ------------------------------------------------------------------ metrics


def scrape(client) -> dict[str, Metric]:
    resp = client.get("/metrics")
    assert resp.status_code == 200
    assert resp.headers["content-type"] == CONTENT_TYPE_LATEST
    families = {f.name: f for f in text_string_to_metric_families(resp.text)}
    assert not any(s.name.endswith("_created") for f in families.values() for s in f.samples)
    return families


def sample(families, family: str, name: str, **labels) -> float:
    for s in families[family].samples:
        if s.name == name and all(s.labels.get(k) == v for k, v in labels.items()):
            return s.value
    raise AssertionError(f"no {name}{labels}")


def test_metrics_names_types_and_labels(client):
    client.post("/predict", params={"model": "no_such_bundle"}, json=example())
    client.post("/predict", params={"model": "mlp_d_standard"}, json=example())
    families = scrape(client)
    assert {name: f.type for name, f in families.items()} == {
        "nd_http_requests": "counter",
        "nd_http_errors": "counter",
        "nd_http_request_duration_seconds": "summary",
        "nd_http_requests_in_flight": "gauge",
        "nd_bundles_loaded": "gauge",
        "nd_ready": "gauge",
    }
    assert sample(families, "nd_http_requests", "nd_http_requests_total", route="/predict", status="200") >= 1
    assert sample(families, "nd_http_requests", "nd_http_requests_total", route="/predict", status="404") >= 1
    assert sample(families, "nd_http_errors", "nd_http_errors_total", code="unknown_model") >= 1
    assert sample(families, "nd_http_request_duration_seconds", "nd_http_request_duration_seconds_count",
                  route="/predict") >= 2
    assert sample(families, "nd_http_request_duration_seconds", "nd_http_request_duration_seconds_sum",
                  route="/predict") > 0
    assert sample(families, "nd_http_requests_in_flight", "nd_http_requests_in_flight") == 1  # this scrape
    assert sample(families, "nd_bundles_loaded", "nd_bundles_loaded") == len(SERVED)
    assert sample(families, "nd_ready", "nd_ready") == 1


def test_the_mesh_reads_the_predict_counter(client):
    """loadtest/mesh.py's pattern for the Python service's /predict count."""
    text = client.get("/metrics").text
    assert re.search(r'^nd_http_requests_total\{[^}]*route="/predict"[^}]*\} (\S+)', text, re.M)


def test_each_app_has_its_own_registry():
    """Two apps in one process (as these tests make): no duplicate metric
    error, and counts that do not mix."""
    a, b = State(), State()
    create_app(Settings(model_path="unused"), a)
    create_app(Settings(model_path="unused"), b)
    a.metrics.error("timeout")
    assert b'nd_http_errors_total{code="timeout"} 1.0' in a.metrics.render()
    assert b'code="timeout"' not in b.metrics.render()


def test_unmatched_routes_share_one_label(client):
    client.get("/no/such/path")
    families = scrape(client)
    assert sample(families, "nd_http_requests", "nd_http_requests_total", route="unmatched", status="404") >= 1
    assert not any("/no/such/path" in s.labels.get("route", "") for s in families["nd_http_requests"].samples)


# ------------------------------------------------------------------ logs


def log_lines(log_format: str, emit: Callable[[logging.Logger], None], level: str = "debug",
              logger: str = "reference_service") -> list[str]:
    """What `emit` logs through logs.configure(log_format, level)."""
    root = logging.getLogger()
    before = root.level
    stream = io.StringIO()
    handler = logs.configure(log_format, level, stream=stream)
    try:
        emit(logging.getLogger(logger))
    finally:
        root.removeHandler(handler)
        root.setLevel(before)
    return stream.getvalue().splitlines()


def test_json_lines_carry_the_rust_services_fields():
    def emit(log):
        log.info("bundle loaded", extra={"bundle": "mlp", "hash": "sha256:00", "models": 1})
        log.warning("slow")
        log.debug("details %d", 3)
        try:
            raise ValueError("broken bundle")
        except ValueError:
            log.exception("loading bundles failed", extra={"model_path": "/m"})

    lines = [json.loads(line) for line in log_lines("json", emit)]
    assert [line["level"] for line in lines] == ["INFO", "WARN", "DEBUG", "ERROR"]
    for line in lines:
        assert set(line) == {"timestamp", "level", "fields", "target"}
        assert re.fullmatch(r"\d{4}-\d\d-\d\dT\d\d:\d\d:\d\d\.\d{6}Z", line["timestamp"])
        assert line["target"] == "reference_service"
        assert not any(k.startswith("_") for k in line["fields"])  # ray's _ray_timestamp_ns and the like
    assert lines[0]["fields"] == {"message": "bundle loaded", "bundle": "mlp", "hash": "sha256:00", "models": 1}
    assert lines[2]["fields"] == {"message": "details 3"}
    assert lines[3]["fields"]["model_path"] == "/m"
    assert "ValueError: broken bundle" in lines[3]["fields"]["error"]


def test_text_lines_append_the_fields():
    (line,) = log_lines("text", lambda log: log.info("bundle loaded", extra={"bundle": "mlp"}))
    assert re.fullmatch(r"\S+ \S+ INFO reference_service: bundle loaded bundle=mlp", line), line


def test_log_level_filters():
    def emit(log):
        log.info("hidden")
        log.warning("shown")

    assert [json.loads(line)["fields"]["message"] for line in log_lines("json", emit, "warn")] == ["shown"]


def test_uvicorn_records_are_json_too():
    def emit(log):
        log.info("Started server process [%d]", 1, extra={"color_message": "\x1b[1mStarted\x1b[0m"})

    (line,) = [json.loads(s) for s in log_lines("json", emit, "info", logger="uvicorn.error")]
    assert line["target"] == "uvicorn.error"
    assert line["fields"] == {"message": "Started server process [1]"}
