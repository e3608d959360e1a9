"""Envoy for the local mesh: processes in their own session, the bootstrap
(listener, routes by x-nd-backend, clusters, the stats_tags of
deploy/local/envoy/envoy.yaml), the filter's Wasm configuration inline or by
ECDS, and a running Envoy's admin API. `make run` (loadtest/mesh.py) and the
filter's integration tests (tests/filter/harness.py) share it.

Everything listens on 127.0.0.1 with ephemeral ports unless told otherwise.
Processes start in their own session (setsid); they are stopped by their
recorded PID (process group), never by name.
"""

import itertools
import json
import os
import re
import signal
import subprocess
import tempfile
import time
import urllib.parse
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent
TARGET = Path(os.environ.get("CARGO_TARGET_DIR", REPO / "target"))
WASM = Path(os.environ.get("ND_FILTER_WASM", TARGET / "wasm32-wasip1/release/wasm_filter.wasm"))
WASM_TYPE = "type.googleapis.com/envoy.extensions.filters.http.wasm.v3.Wasm"

# Distinct --base-id per Envoy, also across concurrent pytest runs.
_base_ids = itertools.count((os.getpid() % 5000) * 10 + 100)


def next_base_id() -> int:
    """A --base-id no other Envoy of this process used (shared memory is keyed by it)."""
    return next(_base_ids)


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


class ExternalBackend:
    """A backend given by URL (the real services); not controllable."""

    def __init__(self, name, url):
        u = urllib.parse.urlsplit(url)
        self.name, self.url = name, url.rstrip("/")
        self.host, self.port = u.hostname, u.port or 80



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
    cfg: dict[str, Any] = {
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
                        "@type": ("type.googleapis.com/envoy.extensions.filters.network.http_connection_manager.v3."
                                  "HttpConnectionManager"),
                        "stat_prefix": "ingress",
                        "route_config": {"name": "nd", "virtual_hosts": [
                            {"name": "nd", "domains": ["*"], "routes": routes}]},
                        "http_filters": list(http_filters) + [{
                            "name": "envoy.filters.http.router",
                            "typed_config": {
                                "@type": "type.googleapis.com/envoy.extensions.filters.http.router.v3.Router"},
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
        self.base_id = next_base_id()
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
