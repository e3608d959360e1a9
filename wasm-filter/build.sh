#!/usr/bin/env bash
# Builds the filter and the minimal benchmark filter for wasm32-wasip1 with
# size settings (opt-level z, fat LTO, one codegen unit, abort on panic,
# stripped). They are passed with --config because profiles can only be set
# in the workspace root's Cargo.toml; once the root has them (wasm-filter/README.md,
# "Build") plain `cargo build -p wasm-filter --target wasm32-wasip1 --release`
# gives the same module.
#   -> target/wasm32-wasip1/release/wasm_filter.wasm
#   -> target/wasm32-wasip1/release/examples/minimal_filter.wasm
set -euo pipefail
cd "$(dirname "$0")/.."
size_flags=(
  --config 'profile.release.opt-level="z"'
  --config 'profile.release.lto=true'
  --config 'profile.release.codegen-units=1'
  --config 'profile.release.panic="abort"'
  --config 'profile.release.strip=true'
)
rustup target list --installed 2>/dev/null | grep -qx wasm32-wasip1 || rustup target add wasm32-wasip1
cargo build -p wasm-filter --target wasm32-wasip1 --release "${size_flags[@]}" --lib --example minimal_filter
out=${CARGO_TARGET_DIR:-target}/wasm32-wasip1/release
for f in "$out/wasm_filter.wasm" "$out/examples/minimal_filter.wasm"; do
  printf '%s %d bytes\n' "$f" "$(stat -c %s "$f")"
done
max=$((300 * 1024))
if [ "$(stat -c %s "$out/wasm_filter.wasm")" -gt "$max" ]; then
  echo "wasm_filter.wasm is over the 300 KiB budget" >&2
  exit 1
fi
