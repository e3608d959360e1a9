"""A real Prometheus (Debian prometheus 2.42) on 127.0.0.1 with a generated
config, and Flagger's template variables filled the way Flagger fills them."""

import re
import time

import httpx
import pytest
import yaml
from k8s_support import Proc, free_port, wait_http


class Prometheus:
    def __init__(self, binary, workdir, scrape_configs):
        self.port = free_port()
        self.url = f"http://127.0.0.1:{self.port}"
        cfg = workdir / "prometheus.yml"
        cfg.write_text(yaml.safe_dump({
            "global": {"scrape_interval": "1s", "evaluation_interval": "1s"},
            "scrape_configs": scrape_configs,
        }, sort_keys=False))
        (workdir / "tsdb").mkdir(exist_ok=True)
        self.proc = Proc([binary, f"--config.file={cfg}", f"--storage.tsdb.path={workdir / 'tsdb'}",
                          f"--web.listen-address=127.0.0.1:{self.port}", "--log.level=warn"],
                         workdir / "prometheus.log")
        wait_http(self.url + "/-/ready", self.proc, timeout=60)

    def query(self, expr, at=None):
        params = {"query": expr} if at is None else {"query": expr, "time": f"{at:.3f}"}
        r = httpx.get(self.url + "/api/v1/query", params=params, timeout=10)
        body = r.json()
        if body.get("status") != "success":
            pytest.fail(f"PromQL refused: {body.get('error')}\n{expr}")
        return body["data"]["result"]

    def scalar(self, expr, at=None):
        """The one float a Flagger MetricTemplate must return (None: no value, which Flagger counts as a failure)."""
        result = self.query(expr, at)
        if not result:
            return None
        assert len(result) == 1, f"Flagger needs one value, got {len(result)}: {result}"
        return float(result[0]["value"][1])

    def wait_for(self, expr, timeout=30.0):
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self.query(expr):
                return
            time.sleep(0.5)
        pytest.fail(f"no data after {timeout}s for {expr}\n{self.proc.log()[-2000:]}")

    def stop(self):
        self.proc.stop()


def fill(query, **variables):
    """Flagger's template variables ({{ namespace }}, {{ target }}, {{ interval }}, ...)."""
    out = query
    for name, value in variables.items():
        out = re.sub(r"\{\{\s*" + re.escape(name) + r"\s*\}\}", value, out)
    assert "{{" not in out, f"unfilled variable in {out}"
    return out
