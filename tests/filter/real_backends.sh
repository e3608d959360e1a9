#!/usr/bin/env bash
# Runs tests/filter/test_real_backends.py against the real services: starts the
# Python reference service and the Rust service on free ports with
# tests/fixtures/bundles, runs the test through Envoy + the filter, stops both
# by PID. Needs target/release/neuro-divergent (or ND_RUST_BIN) and the .wasm
# (wasm-filter/build.sh). To use services already running, skip this script and
# set ND_FILTER_PYTHON_URL / ND_FILTER_RUST_URL for pytest directly.
#
# --legacy: the same run on the pre-3.3 (pickle format) fixture bundles that
# NeuralForecast 3.3 answers as their writer did (tests/filter/legacy_set.py),
# with the Python service reading pickles (ALLOW_PICKLE=1); only the
# agreement test (the wrong-bundle test needs the fixture bundles).
set -euo pipefail
root=$(cd "$(dirname "$0")/../.." && pwd)
cd "$root"
V=$(scripts/python-env.sh)
rust_bin=${ND_RUST_BIN:-$root/target/release/neuro-divergent}
bundles=${ND_FILTER_BUNDLES:-$root/tests/fixtures/bundles}
logs=$(mktemp -d)
allow_pickle=
py_bundles=$bundles
rs_bundles=$bundles
only=()
if [ "${1:-}" = "--legacy" ]; then
  shift
  "$V/bin/python" tests/filter/legacy_set.py "$logs/legacy"
  py_bundles=$logs/legacy/bundles
  rs_bundles=$py_bundles
  export ND_FILTER_CASES=$logs/legacy/cases
  allow_pickle=1
  only=(-k agree)
else
  # One bundle the services hold differently: `wrong_intervals` is
  # mlp_d_conformal_error for Python and, for Rust, the same weights with its
  # conformity scores scaled by 1.25 (forecasts agree, intervals must not).
  py_bundles=$logs/python-bundles
  rs_bundles=$logs/rust-bundles
  cp -r "$bundles" "$py_bundles"
  cp -r "$bundles" "$rs_bundles"
  cp -r "$bundles/mlp_d_conformal_error" "$py_bundles/wrong_intervals"
  cp -r "$bundles/mlp_d_conformal_error" "$rs_bundles/wrong_intervals"
  "$V/bin/python" - "$rs_bundles/wrong_intervals/configuration.safetensors" <<'PY'
import sys
from safetensors.numpy import load_file, save_file
path = sys.argv[1]
tensors = load_file(path)
save_file({k: v * 1.25 if v.dtype.kind == "f" else v for k, v in tensors.items()}, path)
PY
fi
free_port() { "$V/bin/python" -c "import socket; s = socket.socket(); s.bind(('127.0.0.1', 0)); print(s.getsockname()[1])"; }
py_port=$(free_port)
rs_port=$(free_port)
(cd python && ALLOW_PICKLE=$allow_pickle exec setsid "$V/bin/python" -m reference_service --model-path "$py_bundles" --host 127.0.0.1 --port "$py_port") >"$logs/python.log" 2>&1 &
py_pid=$!
setsid "$rust_bin" serve --model-path "$rs_bundles" --host 127.0.0.1 --port "$rs_port" >"$logs/rust.log" 2>&1 &
rs_pid=$!
trap 'kill "$py_pid" "$rs_pid" 2>/dev/null || true; wait 2>/dev/null || true' EXIT
for _ in $(seq 300); do
  if curl -sf "http://127.0.0.1:$py_port/ready" >/dev/null && curl -sf "http://127.0.0.1:$rs_port/ready" >/dev/null; then
    break
  fi
  sleep 1
done
ND_FILTER_PYTHON_URL="http://127.0.0.1:$py_port" ND_FILTER_RUST_URL="http://127.0.0.1:$rs_port" \
  "$V/bin/pytest" -q tests/filter/test_real_backends.py "${only[@]}" "$@" || { echo "service logs in $logs" >&2; exit 1; }
