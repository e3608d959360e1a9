#!/usr/bin/env bash
# hey against the Rust and the Python service on the same bundle and request,
# one machine: throughput, p50/p99, RSS, start-to-ready. Bounded in time,
# 127.0.0.1 only; both servers are stopped by PID.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
cd "$root"
venv=$(scripts/python-env.sh)
bin=target/release/neuro-divergent
models=tests/fixtures/bundles
body=examples/predict-request.json
duration=${BENCH_SECONDS:-10}
out_dir=bench/results
mkdir -p "$out_dir"
report="$out_dir/http-$(date -u +%Y%m%dT%H%M%SZ).md"
pids=()
cleanup() { for p in "${pids[@]}"; do kill "$p" 2>/dev/null || true; done; wait 2>/dev/null || true; }
trap cleanup EXIT

free_port() { "$venv/bin/python" -c 'import socket; s=socket.socket(); s.bind(("127.0.0.1",0)); print(s.getsockname()[1])'; }
now_ms() { date +%s%3N; }
wait_ready() { # url -> ms until /ready answered 200
  local start=$1 url=$2
  for _ in $(seq 1 6000); do
    if curl -fs -o /dev/null "$url/ready"; then echo $(( $(now_ms) - start )); return 0; fi
    sleep 0.005
  done
  echo "timeout"; return 1
}
rss_mb() { awk '/VmRSS/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }
hwm_mb() { awk '/VmHWM/ {printf "%.1f", $2/1024}' "/proc/$1/status"; }

run_hey() { # name url conc
  local name=$1 url=$2 c=$3 out
  out=$(hey -z "${duration}s" -c "$c" -m POST -T application/json -D "$body" "$url/predict?model=mlp_d_standard")
  local rps p50 p90 p99 errs
  rps=$(awk '/Requests\/sec/ {print $2}' <<<"$out")
  p50=$(awk '/ 50% in/ {print $3*1000}' <<<"$out")
  p90=$(awk '/ 90% in/ {print $3*1000}' <<<"$out")
  p99=$(awk '/ 99% in/ {print $3*1000}' <<<"$out")
  errs=$(awk '/\[200\]/ {ok=$2} END {print ok+0}' <<<"$out")
  echo "| $name | $c | $rps | $p50 | $p90 | $p99 | $errs |"
}

rport=$(free_port); pport=$(free_port)
start=$(now_ms)
setsid "$bin" serve --model-path "$models" --host 127.0.0.1 --port "$rport" >/dev/null 2>&1 & rpid=$!; pids+=("$rpid")
rready=$(wait_ready "$start" "http://127.0.0.1:$rport")
start=$(now_ms)
PYTHONPATH=python setsid "$venv/bin/python" -m reference_service --model-path "$models" --host 127.0.0.1 --port "$pport" >/dev/null 2>&1 & ppid=$!; pids+=("$ppid")
pready=$(wait_ready "$start" "http://127.0.0.1:$pport")
r_idle=$(rss_mb "$rpid"); p_idle=$(rss_mb "$ppid")

{
  echo "# HTTP benchmark $(date -u +%FT%TZ)"
  echo
  echo "Same bundle (mlp_d_standard, 17 bundles loaded), same body ($body), hey -z ${duration}s, $(nproc) cores shared by client and server."
  echo
  echo "| service | connections | req/s | p50 ms | p90 ms | p99 ms | 200 answers |"
  echo "|---|---|---|---|---|---|---|"
  for c in 1 4 16; do
    run_hey rust "http://127.0.0.1:$rport" "$c"
    run_hey python "http://127.0.0.1:$pport" "$c"
  done
  echo
  echo "| service | start to ready ms | RSS idle MB | RSS peak MB |"
  echo "|---|---|---|---|"
  echo "| rust | $rready | $r_idle | $(hwm_mb "$rpid") |"
  echo "| python | $pready | $p_idle | $(hwm_mb "$ppid") |"
} | tee "$report"
echo "report: $report"
