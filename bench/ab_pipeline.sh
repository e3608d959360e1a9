#!/usr/bin/env bash
# Interleaved A/B of the whole default-shape pipeline (criterion
# `pipeline/<case>`): the bench binary of REV (built in a git worktree with its
# own target dir outside the clone) and of the working tree, run alternately
# ROUNDS times so machine drift hits both alike. Prints one line per round,
# binary and case: "<before|after> <round> <bench id> <median> <unit>".
#
#   bench/ab_pipeline.sh REV [ROUNDS]
set -euo pipefail
rev=${1:?usage: bench/ab_pipeline.sh REV [ROUNDS]}
rounds=${2:-3}
root=$(cd "$(dirname "$0")/.." && pwd)
work=${AB_WORKDIR:-${TMPDIR:-/tmp}/nd-ab-$(git -C "$root" rev-parse --short "$rev")}
cases='pipeline/(mlp_d_standard__tail|multi_d__tail|mlp_exog__rescaled)$'

bench_bin() { # dir target -> path of the forward bench executable
  (cd "$1" && CARGO_TARGET_DIR=$2 cargo bench --bench forward --no-run --message-format=json 2>/dev/null) \
    | python3 -c 'import json,sys
for l in sys.stdin:
    m = json.loads(l)
    if m.get("reason") == "compiler-artifact" and m["target"]["name"] == "forward" and m.get("executable"):
        print(m["executable"])'
}

[ -d "$work/tree" ] || git -C "$root" worktree add -f "$work/tree" "$rev" >/dev/null
before=$(bench_bin "$work/tree" "$work/target")
after=$(bench_bin "$root" "${CARGO_TARGET_DIR:-$root/target}")
for round in $(seq "$rounds"); do
  for which in before after; do
    if [ "$which" = before ]; then bin=$before dir=$work/tree out=$work/target
    else bin=$after dir=$root out=${CARGO_TARGET_DIR:-$root/target}; fi
    (cd "$dir" && CARGO_TARGET_DIR=$out "$bin" --bench --measurement-time 5 "$cases" 2>/dev/null) | python3 -c '
import re, sys
for name, med, unit in re.findall(r"(pipeline/\S+)\s+time:\s+\[\S+ \S+ (\S+) (\S+)", sys.stdin.read()):
    print(sys.argv[1], sys.argv[2], name, med, unit)' "$which" "$round"
  done
done
echo "worktree and its target: $work (git worktree remove --force $work/tree when done)" >&2
