#!/usr/bin/env bash
# Prints the path of the project's Python venv, creating it first if needed.
# The venv lives outside the clone, keyed by the lock file's hash, so CI and
# fresh clones reuse it; it is rebuilt only when python/requirements.lock changes.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
lock="$root/python/requirements.lock"
hash=$(sha256sum "$lock" | cut -c1-16)
cache=${ND_CACHE_DIR:-$HOME/.cache/neuro-divergent}
venv="$cache/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  echo "python-env: creating $venv from python/requirements.lock (torch is large: a few minutes the first time)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  python3 -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --progress-bar off -r "$lock" >&2
  touch "$venv/.complete"
fi
echo "$venv"
