#!/usr/bin/env bash
# Builds the guest plugins in plugins/ (WebAssembly components for wasm32-wasip2), installing
# the target when it is missing. Output: plugins/target/wasm32-wasip2/release/*.wasm
set -euo pipefail
cd "$(dirname "$0")/../plugins"
if ! rustup target list --installed | grep -qx wasm32-wasip2; then
  rustup target add wasm32-wasip2
fi
cargo build --release --target wasm32-wasip2 --quiet
ls target/wasm32-wasip2/release/*.wasm >/dev/null
