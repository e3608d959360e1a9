"""Processes and Envoy configurations for the filter's integration tests.

Everything listens on 127.0.0.1 with ephemeral ports. Processes start in their
own session (setsid); they are stopped by their recorded PID (process group),
never by name.
"""

import collections
import itertools
import json
import os
import re
import signal
import subprocess
import sys
import tempfile
import time
import urllib.parse
from pathlib import Path

import httpx

HERE = Path(__file__).resolve().parent
REPO = HERE.parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
WASM = Path(os.environ.get("ND_FILTER_WASM", TARGET / "wasm32-wasip1/release/wasm_filter.wasm"))
MINIMAL_WASM = Path(
    os.environ.get("ND_MINIMAL_WASM", TARGET / "wasm32-wasip1/release/examples/minimal_filter.wasm")
)
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

# Distinct --base-id per Envoy, also across concurrent pytest runs.
_base_ids = itertools.count((os.getpid() % 5000) * 10 + 100)


def envoy_bin():
    if os.environ.get("ENVOY_BIN"):
        return os.environ["ENVOY_BIN"]
    venv = subprocess.run(
        [str(REPO / "scripts/python-env.sh")], check=True, capture_output=True, text=True
    ).stdout.strip()
    return str(Path(venv) / "bin/envoy")


class Proc:
    """A child process in its own session, stopped by PID."""

    def __init__(self, args, log_path, **kw):
        self.log_path = Path(log_path)
        self._log = open(self.log_path, "ab")
        self.popen = subprocess.Popen(
            args, stdout=kw.pop("stdout", self._log), stderr=self._log, start_new_session=True, **kw
        )
        self.pid = self.popen.pid

    def alive(self):
        return self.popen.poll() is None

    def stop(self, timeout=10):
        if self.alive():
            try:
                os.killpg(self.pid, signal.SIGTERM)  # the group led by our PID
            except ProcessLookupError:
                pass
            try:
                self.popen.wait(timeout)
            except subprocess.TimeoutExpired:
                os.killpg(self.pid, signal.SIGKILL)
                self.popen.wait(timeout)
        self._log.close()

    def log(self):
        return self.log_path.read_text(errors="replace")


class Upstream:
    """tests/filter/upstream.py: a controllable /predict backend."""

    def __init__(self, name, workdir):
        self.name = name
        self.proc = Proc(
            [sys.executable, str(HERE / "upstream.py"), "--name", name],
            Path(workdir) / f"upstream-{name}.log",
            stdout=subprocess.PIPE,
        )
        line = self.proc.popen.stdout.readline().decode()
        m = re.match(r"PORT (\d+)", line)
        if not m:
            self.proc.stop()
            raise RuntimeError(f"upstream {name} did not start: {line!r} {self.proc.log()}")
        self.host, self.port = "127.0.0.1", int(m.group(1))
        self.url = f"http://{self.host}:{self.port}"

    def control(self, **kw):
        httpx.post(self.url + "/__control", json=kw or {"mode": "ok"}, timeout=5).raise_for_status()

    def reset(self):
        self.control(mode="ok")
        httpx.post(self.url + "/__reset", timeout=5).raise_for_status()

    def stats(self):
        return httpx.get(self.url + "/__stats", timeout=5).json()

    def stop(self):
        self.proc.stop()


class ExternalBackend:
    """A backend given by URL (the real services); not controllable."""

    def __init__(self, name, url):
        u = urllib.parse.urlsplit(url)
        self.name, self.url = name, url.rstrip("/")
        self.host, self.port = u.hostname, u.port or 80


# ---------------------------------------------------------------- requests

PREDICT = {"df": [{"unique_id": "s1", "ds": "2024-01-31", "y": 112.0}]}


def served_by(envoy, n, headers=None, fresh_connections=False, expect_status=200):
    """Sends n /predict requests; returns Counter of the x-upstream that answered.
    fresh_connections: a new connection per request, so both Envoy workers serve."""
    seen = collections.Counter()
    with httpx.Client(timeout=5) as client:
        for i in range(n):
            h = dict(headers(i) if callable(headers) else headers or {})
            if fresh_connections:
                h["connection"] = "close"
            r = client.post(envoy.url + "/predict", json=PREDICT, headers=h)
            if expect_status is not None:
                assert r.status_code == expect_status, (r.status_code, r.text)
            seen[r.headers.get("x-upstream", f"status {r.status_code}")] += 1
    return seen


# ---------------------------------------------------------------- configuration


def cluster(name, host, port, connect_timeout="0.5s"):
    return {
        "name": name,
        "type": "STATIC",
        "connect_timeout": connect_timeout,
        # Below uvicorn's 5 s keep-alive, as in loadtest/mesh.py: Envoy, not the
        # backend, closes an idle connection, so no request is sent on a
        # connection the backend is closing (a 503 "connection termination").
        "typed_extension_protocol_options": {"envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
            "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
            "common_http_protocol_options": {"idle_timeout": "4s"},
            "explicit_http_config": {"http_protocol_options": {}},
        }},
        "load_assignment": {
            "cluster_name": name,
            "endpoints": [{"lb_endpoints": [{"endpoint": {"address": {
                "socket_address": {"address": host, "port_value": port}}}}]}],
        },
    }


def filter_config(python, rust, **overrides):
    """A plugin configuration (dict) for clusters named python / rust."""
    cfg = {
        "rust_weight_bp": 0,
        "backends": {
            "python": {"cluster": "python", "authority": f"{python.host}:{python.port}"},
            "rust": {"cluster": "rust", "authority": f"{rust.host}:{rust.port}"},
        },
    }
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(cfg.get(k), dict):
            cfg[k] = {**cfg[k], **v}
        else:
            cfg[k] = v
    return cfg


def wasm_config(plugin_config, wasm=WASM, name="nd_filter"):
    """The `config` of envoy.extensions.filters.http.wasm.v3.Wasm."""
    return {
        "name": name,
        "root_id": name,
        "vm_config": {
            "vm_id": name,
            "runtime": "envoy.wasm.runtime.v8",
            "code": {"local": {"filename": str(wasm)}},
        },
        "configuration": {
            "@type": "type.googleapis.com/google.protobuf.StringValue",
            "value": plugin_config if isinstance(plugin_config, str) else json.dumps(plugin_config),
        },
    }


def wasm_filter(plugin_config, wasm=WASM):
    return {"name": "envoy.filters.http.wasm",
            "typed_config": {"@type": WASM_TYPE, "config": wasm_config(plugin_config, wasm)}}


def ecds_filter(path, name="nd_filter"):
    """The filter delivered by ECDS from a watched file (see write_ecds)."""
    return {
        "name": name,
        "config_discovery": {
            "config_source": {"path_config_source": {"path": str(path)}, "resource_api_version": "V3"},
            "type_urls": [WASM_TYPE],
        },
    }


def write_ecds(path, plugin_config, version, name="nd_filter", wasm=WASM):
    """Writes the ECDS resource file atomically (write aside, then rename),
    which is what Envoy's file watch picks up."""
    doc = {
        "version_info": str(version),
        "resources": [{
            "@type": "type.googleapis.com/envoy.config.core.v3.TypedExtensionConfig",
            "name": name,
            "typed_config": {"@type": WASM_TYPE, "config": wasm_config(plugin_config, wasm, name)},
        }],
    }
    path = Path(path)
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(doc))
    os.rename(tmp, path)


SHIPPED = REPO / "deploy/local/envoy"


def stats_tags():
    """The stats_tags of the shipped local Envoy config (one source for the
    regexes; test_validate checks them against wasm-filter/README.md)."""
    import yaml

    return yaml.safe_load((SHIPPED / "envoy.yaml").read_text())["stats_config"]["stats_tags"]


def bootstrap(backends, http_filters, route_timeout="2s", extra_routes=(), stats_flush_interval="1s"):
    """An Envoy bootstrap: one listener, routes selecting the cluster by x-nd-backend."""
    routes = list(extra_routes) + [
        {"match": {"prefix": "/", "headers": [{"name": "x-nd-backend", "string_match": {"exact": b.name}}]},
         "route": {"cluster": b.name, "timeout": route_timeout}}
        for b in backends
    ] + [
        # Without the filter (or the header) requests go to Python, the service being migrated from.
        {"match": {"prefix": "/"}, "route": {"cluster": "python", "timeout": route_timeout}},
    ]
    return {
        # ECDS (like any xDS) needs a node identity.
        "node": {"id": "nd-filter-test", "cluster": "nd-filter-test"},
        "admin": {"address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}}},
        "stats_flush_interval": stats_flush_interval,
        "stats_config": {"stats_tags": stats_tags()},
        "static_resources": {
            "listeners": [{
                "name": "ingress",
                "address": {"socket_address": {"address": "127.0.0.1", "port_value": 0}},
                "filter_chains": [{"filters": [{
                    "name": "envoy.filters.network.http_connection_manager",
                    "typed_config": {
                        "@type": "type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3.HttpConnectionManager",
                        "stat_prefix": "ingress",
                        "route_config": {"name": "nd", "virtual_hosts": [
                            {"name": "nd", "domains": ["*"], "routes": routes}]},
                        "http_filters": list(http_filters) + [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {"@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
                        }],
                    },
                }]}],
            }],
            "clusters": [cluster(b.name, b.host, b.port) for b in backends],
        },
    }


class Envoy:
    """A real Envoy (--concurrency 2) on ephemeral ports."""

    def __init__(self, config, workdir, concurrency=2, extra_args=()):
        self.workdir = Path(tempfile.mkdtemp(prefix="envoy-", dir=workdir))
        self.config_path = self.workdir / "envoy.json"
        self.config_path.write_text(json.dumps(config, indent=1))
        admin_file = self.workdir / "admin-address"
        self.base_id = next(_base_ids)
        self.proc = Proc(
            [envoy_bin(), "-c", str(self.config_path), "--base-id", str(self.base_id),
             "--concurrency", str(concurrency), "--admin-address-path", str(admin_file),
             "--log-level", "warn", "--component-log-level", "wasm:info,config:info",
             "--drain-time-s", "1", *extra_args],
            self.workdir / "envoy.log",
        )
        deadline = time.time() + 30
        while time.time() < deadline:
            if not self.proc.alive():
                raise RuntimeError(f"envoy exited:\n{self.proc.log()[-4000:]}")
            if admin_file.exists() and admin_file.read_text().strip():
                self.admin = "http://" + admin_file.read_text().strip()
                try:
                    if httpx.get(self.admin + "/ready", timeout=1).status_code == 200:
                        break
                except httpx.HTTPError:
                    pass
            time.sleep(0.05)
        else:
            self.stop()
            raise RuntimeError("envoy did not become ready")
        listeners = httpx.get(self.admin + "/listeners?format=json", timeout=5).json()
        sock = listeners["listener_statuses"][0]["local_address"]["socket_address"]
        self.url = f"http://{sock['address']}:{sock['port_value']}"

    def stop(self):
        self.proc.stop()

    def log(self):
        return self.proc.log()

    def prometheus(self):
        return httpx.get(self.admin + "/stats/prometheus", timeout=5).text

    def metrics(self):
        """{(name, frozenset(labels)): value} from /stats/prometheus, nd_filter_* only."""
        out = {}
        for line in self.prometheus().splitlines():
            m = re.match(r"^(nd_filter_\w+?)(?:\{(.*)\})? (\S+)$", line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def metric(self, name, **labels):
        """One value now (counters may be up to one flush behind: use snapshot)."""
        return self.metrics().get((name, frozenset(labels.items())), 0.0)

    def snapshot(self):
        """Waits for the filter's counter flush (every 200 ms), then scrapes
        once; returns lookup(name, **labels) -> value."""
        time.sleep(0.45)
        m = self.metrics()
        return lambda name, **labels: m.get((name, frozenset(labels.items())), 0.0)

    def wait_for(self, cond, timeout=10, what="condition"):
        deadline = time.time() + timeout
        while time.time() < deadline:
            v = cond()
            if v:
                return v
            time.sleep(0.1)
        raise AssertionError(f"timed out waiting for {what}\n--- envoy log tail ---\n{self.log()[-3000:]}")
