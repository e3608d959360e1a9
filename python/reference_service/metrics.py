"""The service's Prometheus metrics (prometheus_client), in a registry of the
app's own so that several apps (tests) can live in one process:

    nd_http_requests_total{route, status}          counter
    nd_http_errors_total{code}                     counter
    nd_http_request_duration_seconds{route}        summary (_sum, _count)
    nd_http_requests_in_flight                     gauge
    nd_bundles_loaded                              gauge
    nd_ready                                       gauge (1 when /ready answers 200)
"""

from __future__ import annotations

from collections.abc import Callable

import prometheus_client
from prometheus_client import CONTENT_TYPE_LATEST, CollectorRegistry, Counter, Gauge, Summary, generate_latest

CONTENT_TYPE = CONTENT_TYPE_LATEST

# No `_created` series next to each counter and summary (the exposition these
# metrics had before prometheus_client, which dashboards and tests read).
prometheus_client.disable_created_metrics()


class Metrics:
    def __init__(self) -> None:
        self.registry = CollectorRegistry(auto_describe=True)
        r = self.registry
        self.requests = Counter("nd_http_requests_total", "HTTP requests by route and status.",
                                ["route", "status"], registry=r)
        self.errors = Counter("nd_http_errors_total", "Error responses by contract error code.", ["code"],
                              registry=r)
        self.duration = Summary("nd_http_request_duration_seconds", "Time to answer a request.", ["route"],
                                registry=r)
        self.in_flight = Gauge("nd_http_requests_in_flight", "Requests being answered.", registry=r)
        self.bundles_loaded = Gauge("nd_bundles_loaded", "Bundles loaded from the model path.", registry=r)
        self.ready = Gauge("nd_ready", "1 when /ready answers 200.", registry=r)

    def watch(self, bundles_loaded: Callable[[], float], ready: Callable[[], float]) -> None:
        """The two gauges read the service's state when scraped."""
        self.bundles_loaded.set_function(bundles_loaded)
        self.ready.set_function(ready)

    def start(self) -> None:
        self.in_flight.inc()

    def finish(self, route: str, status: int, seconds: float) -> None:
        self.in_flight.dec()
        self.requests.labels(route=route, status=str(status)).inc()
        self.duration.labels(route=route).observe(seconds)

    def error(self, code: str) -> None:
        self.errors.labels(code=code).inc()

    def render(self) -> bytes:
        return generate_latest(self.registry)
