"""HTTP routes of the reference service: docs/contract.md's, and its description
(docs/openapi.yaml) at /openapi.json and /docs."""

from __future__ import annotations

import logging
import tempfile
import threading
import time
from collections.abc import AsyncIterator, Callable
from contextlib import asynccontextmanager
from dataclasses import dataclass, field
from typing import Any

from fastapi import FastAPI, Request
from fastapi.concurrency import run_in_threadpool
from fastapi.exceptions import RequestValidationError
from fastapi.responses import JSONResponse, Response
from starlette.exceptions import HTTPException as StarletteHTTPException

from . import bundles as bundles_mod
from . import openapi
from .bundles import Bundle
from .errors import ApiError, error_response
from .metrics import CONTENT_TYPE as METRICS_CONTENT_TYPE
from .metrics import Metrics
from .profile import Profile
from .profile import load as load_profile
from .request import check_interval_series, check_shape, parse_json, requested_h, requested_intervals, to_frames
from .settings import Settings

log = logging.getLogger("reference_service")


@dataclass
class State:
    """What the routes and the signal handler share."""

    bundles: dict[str, Bundle] = field(default_factory=dict)
    loaded: bool = False
    draining: bool = False
    load_failed: bool = False
    metrics: Metrics = field(default_factory=Metrics)

    @property
    def ready(self) -> bool:
        return self.loaded and not self.draining


def _load_in_background(settings: Settings, state: State, root_dir: str, on_failure: Callable[[], None]) -> None:
    """Bundles load after the port opens so /health answers and /ready says 503
    meanwhile; a bundle that fails to load stops the service."""
    def run():
        try:
            loaded = bundles_mod.load_all(settings.model_path, root_dir, settings.allow_pickle)
            if settings.default_model is not None and settings.default_model not in loaded:
                raise RuntimeError(f"default model {settings.default_model!r} is not a bundle")
            state.bundles = loaded
            state.loaded = True
            log.info("ready", extra={"bundles": len(loaded), "model_path": settings.model_path})
        except Exception:
            log.exception("loading bundles failed", extra={"model_path": settings.model_path})
            state.load_failed = True
            on_failure()

    threading.Thread(target=run, name="load-bundles", daemon=True).start()


def _select(state: State, settings: Settings, profile: Profile, request: Request, body: Any = None) -> Bundle:
    kind, key = profile.model
    if kind == "query":
        names = request.query_params.getlist(key)
        name = names[0] if names else None
    else:
        name = profile.model_name({}, request.headers, body)
    if name is not None:
        bundle = state.bundles.get(name)
        if bundle is None:
            raise ApiError("unknown_model", f"no bundle named {name!r}; see GET /models")
        return bundle
    if settings.default_model is not None:
        return state.bundles[settings.default_model]
    if len(state.bundles) == 1:
        return next(iter(state.bundles.values()))
    raise ApiError("model_required", f"{len(state.bundles)} bundles are loaded: choose one with ?model=")


def _check_media_type(value: str | None) -> None:
    media_type = (value or "").split(";", 1)[0].strip().lower()
    if media_type != "application/json":
        raise ApiError("unsupported_media_type", f"Content-Type must be application/json, not {value!r}")


async def _read_body(request: Request, limit: int) -> bytes:
    too_large = ApiError("body_too_large", f"body exceeds {limit} bytes")
    length = request.headers.get("content-length", "")
    if length.isdigit() and int(length) > limit:
        raise too_large
    chunks: list[bytes] = []
    size = 0
    async for chunk in request.stream():
        size += len(chunk)
        if size > limit:
            raise too_large
        chunks.append(chunk)
    return b"".join(chunks)


def _answer(bundle: Bundle, body: Any, max_series: int, profile: Profile | None = None) -> list[dict]:
    """`body`: the raw bytes or the parsed JSON; in a custom profile's shape
    when `profile` is given."""
    if isinstance(body, bytes):
        body = parse_json(body)
    if profile is not None:
        body = profile.to_contract(body, bundle.time_col)
    tables = check_shape(body, bundle)
    intervals = requested_intervals(body, bundle)
    h = requested_h(body, bundle)
    frames = to_frames(tables, bundle, max_series=max_series)
    check_interval_series(bundle, intervals, frames.df)
    try:
        return bundles_mod.predict(bundle, frames.df, frames.futr_df, frames.static_df, h=h, intervals=intervals)
    except ApiError:
        raise
    except Exception as e:
        log.exception("predict failed for bundle %s", bundle.name)
        raise ApiError("internal_error", f"prediction failed: {type(e).__name__}") from None


def create_app(settings: Settings, state: State | None = None,
               on_load_failure: Callable[[], None] | None = None, profile: Profile | None = None) -> FastAPI:
    """The service's app. `state` is shared with the signal handler (a new one
    by default); `on_load_failure` runs when the bundles fail to load (the
    server stops); `profile` is settings.api_profile's, read here when not given."""
    state = state if state is not None else State()
    if profile is None:
        profile = load_profile(settings.api_profile) if settings.api_profile else Profile()
    # the committed description (docs/openapi.yaml), not one derived from the routes
    document = openapi.document()

    @asynccontextmanager
    async def lifespan(app: FastAPI) -> AsyncIterator[None]:
        with tempfile.TemporaryDirectory(prefix="reference-service-") as root_dir:
            _load_in_background(settings, state, root_dir, on_load_failure or (lambda: None))
            yield

    app = FastAPI(
        title=document["info"]["title"],
        version=document["info"]["version"],
        lifespan=lifespan,
        openapi_url="/openapi.json",
        docs_url="/docs",  # Swagger UI (its script and style come from a CDN)
        redoc_url=None,
        swagger_ui_oauth2_redirect_url=None,
        redirect_slashes=False,
    )
    app.openapi = lambda: document  # type: ignore[method-assign]  # FastAPI's documented override
    metrics = state.metrics
    metrics.watch(lambda: len(state.bundles), lambda: state.ready)
    custom = None if profile.is_default else profile

    @app.exception_handler(ApiError)
    async def api_error(request: Request, err: ApiError):
        metrics.error(err.code)
        return error_response(err)

    @app.exception_handler(StarletteHTTPException)
    async def http_error(request: Request, exc: StarletteHTTPException):
        code = {404: "not_found", 405: "method_not_allowed"}.get(exc.status_code, "invalid_request")
        message = {"not_found": f"no route {request.url.path}",
                   "method_not_allowed": f"{request.method} is not allowed on {request.url.path}"}
        headers = dict(exc.headers) if exc.headers else None
        return await api_error(request, ApiError(code, message.get(code, str(exc.detail)), headers))

    @app.exception_handler(RequestValidationError)
    async def validation_error(request: Request, exc: RequestValidationError):
        return await api_error(request, ApiError("invalid_request", str(exc)))

    @app.exception_handler(Exception)
    async def unexpected(request: Request, exc: Exception):
        log.error("unhandled error on %s", request.url.path, exc_info=exc)
        return await api_error(request, ApiError("internal_error", "internal error"))

    @app.middleware("http")
    async def observe(request: Request, call_next):
        start = time.perf_counter()
        metrics.start()
        status = 500
        try:
            response = await call_next(request)
            status = response.status_code
            return response
        finally:
            route = request.scope.get("route")
            metrics.finish(route.path if route else "unmatched", status, time.perf_counter() - start)

    @app.get("/health")
    async def health():
        return profile.health

    @app.get("/ready")
    async def ready():
        if state.ready:
            return profile.ready
        return JSONResponse(profile.not_ready, status_code=503)

    @app.get("/metrics")
    async def metrics_text():
        return Response(metrics.render(), media_type=METRICS_CONTENT_TYPE)

    def require_ready():
        if not state.ready:
            raise ApiError("not_ready", "draining" if state.draining else "bundles are still loading")

    @app.get("/models")
    async def models():
        require_ready()
        return {"models": [state.bundles[name].describe() for name in sorted(state.bundles)]}

    @app.post("/predict")
    async def predict(request: Request):
        require_ready()
        _check_media_type(request.headers.get("content-type"))
        raw = await _read_body(request, settings.max_body_bytes)
        if profile.model[0] == "body":
            body = await run_in_threadpool(parse_json, raw)
            bundle = _select(state, settings, profile, request, body)
        else:
            body, bundle = raw, _select(state, settings, profile, request)
        # CPU work off the event loop
        rows = await run_in_threadpool(_answer, bundle, body, settings.max_series, custom)
        if custom is None:
            return JSONResponse({"model": bundle.name, "predictions": rows})
        return JSONResponse(custom.answer(rows, bundle.name, bundle.id_col, bundle.time_col))

    return app
