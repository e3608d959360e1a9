#!/usr/bin/env bash
# Installs what `make run` and `make test` need on a fresh machine, idempotently:
# Rust components and targets, the locked Python venv (outside the clone,
# keyed by the hash of python/requirements.lock and requirements-dev.lock;
# Python 3.11), and Debian tools.
set -euo pipefail
root=$(cd "$(dirname "$0")/.." && pwd)
say() { printf 'setup: %s\n' "$*" >&2; }

if ! command -v cargo >/dev/null; then
  say "cargo is missing: install Rust (rustup) first"; exit 1
fi
for comp in rustfmt clippy; do
  rustup component list --installed 2>/dev/null | grep -q "^$comp" || { say "rustup component add $comp"; rustup component add "$comp"; }
done
rustup target list --installed 2>/dev/null | grep -q '^wasm32-wasip1$' || { say "rustup target add wasm32-wasip1"; rustup target add wasm32-wasip1; }

need_apt=()
command -v hey >/dev/null || need_apt+=(hey)
command -v prometheus >/dev/null || need_apt+=(prometheus)
command -v shellcheck >/dev/null || need_apt+=(shellcheck)
if [ "${#need_apt[@]}" -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    say "apt-get install ${need_apt[*]}"
    apt-get update -qq >/dev/null 2>&1 || true
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq "${need_apt[@]}" >/dev/null
  else
    say "missing ${need_apt[*]} (install with apt-get); continuing"
  fi
fi

venv=$("$root/scripts/python-env.sh")
say "python venv: $venv"
