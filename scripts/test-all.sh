#!/usr/bin/env bash
# The whole test suite: formatting, lints, and every test on SQLite and PostgreSQL.
# Installs or starts what it needs; fails loudly when something cannot be had.
set -euo pipefail
cd "$(dirname "$0")/.."

scripts/ensure-postgres.sh
# The tests leave a database per PostgreSQL case; drop them when the run ends, however it ends.
trap 'scripts/drop-test-databases.sh || true' EXIT
scripts/build-plugins.sh
scripts/ensure-kube-tools.sh
scripts/ensure-browser.sh

cargo fmt --all -- --check
cargo clippy --workspace --all-targets -- -D warnings
(cd plugins && cargo fmt --all -- --check && cargo clippy --release --target wasm32-wasip2 --quiet -- -D warnings)
# The end-to-end tests run the agent binary; build every binary first.
cargo build --workspace --bins
cargo test --workspace
