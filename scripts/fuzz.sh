#!/usr/bin/env bash
# cargo-fuzz (libFuzzer) on every boundary that takes outside bytes:
#   predict_body   the /predict body: parse, validate, forecast (5 bundles)
#   bundle_loader  safetensors header/tensors/metadata and configuration.json
#   legacy_bundle  pre-3.3 bundles: the pickle reader, configuration.pkl, .ckpt zips
#   filter_config  the filter's plugin configuration
#   comparator     the filter's shadow response comparator
#   comparator_shaped  the same for answers of another API profile's shape
#   profile_body   API profiles: the profile file, and a body read through
#                  the four team profiles of tests/profiles/
#   dates          ds / freq parsing and the future grid
# Usage: scripts/fuzz.sh SECONDS_PER_TARGET [TARGET...]
# Seeds come from the fixtures (scripts/fuzz_seeds.py); corpora, artifacts and a results table live under
# target/fuzz/ (not committed). Exit 1 on a crash.
set -euo pipefail
cd "$(dirname "$0")/.."
SECONDS_PER_TARGET="${1:-60}"
shift || true
TARGETS=("$@")
[ ${#TARGETS[@]} -gt 0 ] || TARGETS=(predict_body bundle_loader legacy_bundle filter_config comparator comparator_shaped
    profile_body dates)

if ! rustup toolchain list | grep -q '^nightly'; then
    echo "fuzz: installing the nightly toolchain cargo-fuzz needs" >&2
    rustup toolchain install nightly --profile minimal >&2 || {
        echo "fuzz: cargo-fuzz needs a nightly toolchain and rustup could not install one" >&2
        exit 2
    }
fi
TOOLS="$(scripts/rust-tools.sh)"
export PATH="$TOOLS:$PATH"
PY="$(scripts/python-env.sh)/bin/python"

WORK="$PWD/target/fuzz"
mkdir -p "$WORK/corpus" "$WORK/artifacts" "$WORK/logs"
"$PY" scripts/fuzz_seeds.py "$WORK/seeds"

# Safe Rust: no sanitizer (panics, aborts, OOM and timeouts are the crashes
# libFuzzer reports); -O with debug assertions so overflow checks stay on.
FLAGS=(--release --debug-assertions --sanitizer none --fuzz-dir fuzz)
cargo +nightly fuzz build "${FLAGS[@]}"

RESULTS="$WORK/results.tsv"
[ -f "$RESULTS" ] || printf 'date\ttarget\tseconds\texecs\tcrashes\tcorpus\n' > "$RESULTS"
status=0
for t in "${TARGETS[@]}"; do
    mkdir -p "$WORK/corpus/$t" "$WORK/artifacts/$t"
    log="$WORK/logs/$t.log"
    set +e
    cargo +nightly fuzz run "${FLAGS[@]}" "$t" "$WORK/corpus/$t" "$WORK/seeds/$t" -- \
        -max_total_time="$SECONDS_PER_TARGET" -rss_limit_mb=2048 -timeout=10 -max_len=262144 \
        -print_final_stats=1 -artifact_prefix="$WORK/artifacts/$t/" >"$log" 2>&1
    rc=$?
    set -e
    execs=$(grep -oP 'stat::number_of_executed_units:\s*\K[0-9]+' "$log" | tail -1 || true)
    corpus=$(find "$WORK/corpus/$t" -type f | wc -l)
    crashes=$(find "$WORK/artifacts/$t" -type f | wc -l)
    printf '%s\t%s\t%s\t%s\t%s\t%s\n' "$(date -u +%FT%TZ)" "$t" "$SECONDS_PER_TARGET" "${execs:-?}" \
        "$crashes" "$corpus" >> "$RESULTS"
    echo "fuzz $t: ${execs:-?} executions in ${SECONDS_PER_TARGET}s, corpus $corpus, crashes $crashes (rc $rc)"
    if [ "$rc" -ne 0 ] || [ "$crashes" -ne 0 ]; then
        echo "fuzz $t: FAILED; log tail:" >&2
        tail -30 "$log" >&2
        status=1
    fi
done
exit $status
