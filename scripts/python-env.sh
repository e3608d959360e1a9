#!/usr/bin/env bash
# Prints the path of the project's Python venv, creating it first if needed.
# The venv lives outside the clone, keyed by the hash of both lock files
# (python/requirements.lock, the reference service's runtime, and
# python/requirements-dev.lock, runtime + tests and linters), so CI and fresh
# clones reuse it; it is rebuilt only when a lock changes. The clone's own
# package (python/reference_service) is not installed into it: the venv is
# shared between clones, so the project's runs put python/ on PYTHONPATH.
#
# Python 3.11 (requires-python in python/pyproject.toml): the interpreter is
# $ND_PYTHON, else python3.11, else python3, and must be 3.11.x.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
runtime_lock="$root/python/requirements.lock"
dev_lock="$root/python/requirements-dev.lock"
hash=$(cat "$runtime_lock" "$dev_lock" | sha256sum | cut -c1-16)
cache=${ND_CACHE_DIR:-$HOME/.cache/neuro-divergent}
venv="$cache/venv-$hash"
if [ ! -f "$venv/.complete" ]; then
  python=${ND_PYTHON:-}
  if [ -z "$python" ]; then
    if command -v python3.11 >/dev/null 2>&1; then python=python3.11; else python=python3; fi
  fi
  if ! version=$("$python" -c 'import sys; print("%d.%d.%d" % sys.version_info[:3])' 2>/dev/null); then
    echo "python-env: no Python interpreter '$python': install Python 3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or pyenv install 3.11) or set ND_PYTHON to one" >&2
    exit 1
  fi
  case "$version" in
    3.11.*) ;;
    *)
      echo "python-env: $python is Python $version; the locks are for Python 3.11: install Python 3.11 (Debian/Ubuntu: apt-get install python3.11 python3.11-venv; or pyenv install 3.11) and put python3.11 on PATH, or set ND_PYTHON to it" >&2
      exit 1
      ;;
  esac
  echo "python-env: creating $venv (Python $version) from python/requirements-dev.lock (torch is large: a few minutes the first time)" >&2
  rm -rf "$venv"
  mkdir -p "$cache"
  "$python" -m venv "$venv"
  "$venv/bin/pip" install --quiet --upgrade pip >&2
  "$venv/bin/pip" install --progress-bar off --require-hashes -r "$dev_lock" >&2
  touch "$venv/.complete"
fi
echo "$venv"
