#!/usr/bin/env bash
# Drops the PostgreSQL databases that test runs and fleet-bench create (brokkr_test_<32 hex>,
# brokkr_client_<32 hex>, brokkr_bench_<32 hex>); other databases are left alone.
set -euo pipefail

url="${BROKKR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
pattern='^brokkr_(test|client|bench)_[0-9a-f]{32}$'
stale=$(psql "$url" -Atqc "SELECT datname FROM pg_database WHERE datname ~ '$pattern'")
count=0
for db in $stale; do
  psql "$url" -qc "DROP DATABASE IF EXISTS \"$db\" WITH (FORCE)" >/dev/null 2>&1 && count=$((count + 1)) || true
done
[ "$count" = 0 ] || echo "dropped $count test databases" >&2
