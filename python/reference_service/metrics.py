"""A few hand-written Prometheus metrics (text format 0.0.4); prometheus_client
is not a dependency of this service."""

from __future__ import annotations

import threading
from collections import Counter, defaultdict

CONTENT_TYPE = "text/plain; version=0.0.4; charset=utf-8"


def _labels(**labels) -> str:
    body = ",".join(f'{k}="{v}"' for k, v in labels.items())  # values are routes, codes: no escaping needed
    return "{" + body + "}"


class Metrics:
    def __init__(self) -> None:
        self._lock = threading.Lock()
        self.requests: Counter = Counter()  # (route, status)
        self.errors: Counter = Counter()  # code
        self.seconds_sum: defaultdict = defaultdict(float)  # route
        self.seconds_count: Counter = Counter()  # route
        self.in_flight = 0

    def start(self) -> None:
        with self._lock:
            self.in_flight += 1

    def finish(self, route: str, status: int, seconds: float) -> None:
        with self._lock:
            self.in_flight -= 1
            self.requests[(route, status)] += 1
            self.seconds_sum[route] += seconds
            self.seconds_count[route] += 1

    def error(self, code: str) -> None:
        with self._lock:
            self.errors[code] += 1

    def render(self, bundles_loaded: int, ready: bool) -> str:
        with self._lock:
            lines = [
                "# HELP nd_http_requests_total HTTP requests by route and status.",
                "# TYPE nd_http_requests_total counter",
                *(f"nd_http_requests_total{_labels(route=r, status=s)} {n}"
                  for (r, s), n in sorted(self.requests.items())),
                "# HELP nd_http_errors_total Error responses by contract error code.",
                "# TYPE nd_http_errors_total counter",
                *(f"nd_http_errors_total{_labels(code=c)} {n}" for c, n in sorted(self.errors.items())),
                "# HELP nd_http_request_duration_seconds Time to answer a request.",
                "# TYPE nd_http_request_duration_seconds summary",
                *(line for r in sorted(self.seconds_count) for line in (
                    f"nd_http_request_duration_seconds_sum{_labels(route=r)} {self.seconds_sum[r]:.6f}",
                    f"nd_http_request_duration_seconds_count{_labels(route=r)} {self.seconds_count[r]}",
                )),
                "# HELP nd_http_requests_in_flight Requests being answered.",
                "# TYPE nd_http_requests_in_flight gauge",
                f"nd_http_requests_in_flight {self.in_flight}",
            ]
        lines += [
            "# HELP nd_bundles_loaded Bundles loaded from the model path.",
            "# TYPE nd_bundles_loaded gauge",
            f"nd_bundles_loaded {bundles_loaded}",
            "# HELP nd_ready 1 when /ready answers 200.",
            "# TYPE nd_ready gauge",
            f"nd_ready {int(ready)}",
        ]
        return "\n".join(lines) + "\n"
