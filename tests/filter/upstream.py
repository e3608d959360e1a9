"""A controllable stand-in for a /predict backend, for the filter's Envoy tests.

Run: python upstream.py --name rust  -> prints "PORT <n>" once listening on 127.0.0.1.

POST /predict*  answers per the current mode (set with POST /__control):
  {"mode": "ok"}                         200 with the canned prediction body
  {"mode": "perturb", "factor": 0.01}    200 with every model column * (1 + factor)
  {"mode": "status", "status": 500}      that status with a contract error body
  {"mode": "sleep", "delay": 2.0}        sleeps, then answers like "ok"
  {"mode": "close"}                      closes the connection without an answer
  {"mode": "early"}                      400 from the headers alone, before reading the body
  "body": {...} replaces the canned body (any mode that answers 200).
GET  /__stats   {"requests", "shadow", "routing": {value: n}, "last": {headers of the last /predict}}
POST /__reset   zeroes the counters
Every answer carries "x-upstream: <name>".
"""

import argparse
import json
import sys
import threading
import time
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

PREDICTION = {
    "model": "air",
    "predictions": [
        {"unique_id": "s1", "ds": "2024-02-29T00:00:00", "MLP": 118.3, "NHITS": 120.25},
        {"unique_id": "s1", "ds": "2024-03-31T00:00:00", "MLP": 119.0, "NHITS": 121.5},
        {"unique_id": "s2", "ds": "2024-02-29T00:00:00", "MLP": 42.0, "NHITS": 41.75},
    ],
}


class State:
    def __init__(self, name):
        self.name = name
        self.lock = threading.Lock()
        self.control = {"mode": "ok"}
        self.reset()

    def reset(self):
        self.requests = 0
        self.shadow = 0
        self.routing = {}
        self.last = {}


def make_handler(state):
    class Handler(BaseHTTPRequestHandler):
        protocol_version = "HTTP/1.1"
        # Headers and body go out in separate writes: without this, Nagle and
        # delayed ACKs add ~40 ms to every keep-alive answer.
        disable_nagle_algorithm = True

        def log_message(self, *args):
            pass

        def _body(self):
            n = int(self.headers.get("content-length") or 0)
            return self.rfile.read(n) if n else b""

        def _send(self, status, obj):
            data = obj if isinstance(obj, bytes) else json.dumps(obj).encode()
            self.send_response(status)
            self.send_header("content-type", "application/json")
            self.send_header("content-length", str(len(data)))
            self.send_header("x-upstream", state.name)
            self.end_headers()
            self.wfile.write(data)

        def do_GET(self):
            if self.path == "/__stats":
                with state.lock:
                    self._send(200, {"requests": state.requests, "shadow": state.shadow,
                                     "routing": state.routing, "last": state.last})
            else:
                self._send(200, {"status": "ok", "upstream": state.name})

        def do_POST(self):
            if self.path.startswith("/predict") and state.control.get("mode") == "early":
                # As a service may answer a bad query: without waiting for the body.
                with state.lock:
                    state.requests += 1
                self.close_connection = True
                self._send(400, {"error": {"code": "model_required", "message": f"{state.name} answered early"}})
                return
            body = self._body()
            if self.path == "/__control":
                with state.lock:
                    state.control = json.loads(body or b"{}")
                self._send(200, {"ok": True})
                return
            if self.path == "/__reset":
                with state.lock:
                    state.reset()
                self._send(200, {"ok": True})
                return
            if not self.path.startswith("/predict"):
                self._send(404, {"error": {"code": "not_found", "message": self.path}})
                return
            with state.lock:
                state.requests += 1
                if self.headers.get("x-nd-shadow"):
                    state.shadow += 1
                r = self.headers.get("x-nd-backend", "")
                state.routing[r] = state.routing.get(r, 0) + 1
                state.last = {k.lower(): v for k, v in self.headers.items()}
                control = dict(state.control)
            mode = control.get("mode", "ok")
            answer = control.get("body", PREDICTION)
            if mode == "sleep":
                time.sleep(float(control.get("delay", 1.0)))
            if mode == "close":
                self.close_connection = True
                try:
                    self.connection.shutdown(2)
                except OSError:
                    pass
                return
            if mode == "status":
                status = int(control.get("status", 500))
                self._send(status, {"error": {"code": "internal_error", "message": f"{state.name} told to fail"}})
                return
            if mode == "perturb":
                f = 1.0 + float(control.get("factor", 0.01))
                answer = json.loads(json.dumps(answer))
                for row in answer.get("predictions", []):
                    for k, v in row.items():
                        if k not in ("unique_id", "ds") and isinstance(v, (int, float)):
                            row[k] = v * f
            self._send(200, answer)

    return Handler


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--name", required=True)
    ap.add_argument("--port", type=int, default=0)
    args = ap.parse_args()
    state = State(args.name)
    server = ThreadingHTTPServer(("127.0.0.1", args.port), make_handler(state))
    server.daemon_threads = True
    print(f"PORT {server.server_address[1]}", flush=True)
    sys.stdout.close()
    server.serve_forever()


if __name__ == "__main__":
    main()
