#!/usr/bin/env bash
# Makes sure the PostgreSQL server the tests use is reachable: starts an installed but stopped
# cluster, installs the server with apt when running as root, and otherwise fails loudly.
# Also drops databases left behind by earlier test runs (scripts/drop-test-databases.sh).
set -euo pipefail

url="${BROKKR_TEST_POSTGRES_URL:-postgres://postgres@127.0.0.1:5432/postgres}"
host=127.0.0.1
port=5432

loud() {
  printf '\n!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n' >&2
  printf '!!! %s\n' "$@" >&2
  printf '!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!!\n\n' >&2
  exit 1
}

ready() { pg_isready -q -h "$host" -p "$port" 2>/dev/null; }

start_installed_cluster() {
  command -v pg_lsclusters >/dev/null || return 1
  local version
  version=$(ls /etc/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || version=$(ls /usr/lib/postgresql 2>/dev/null | sort -V | tail -n 1)
  [ -n "$version" ] || return 1
  if ! pg_lsclusters -h | awk '{print $1" "$2}' | grep -qx "$version main"; then
    echo "creating PostgreSQL cluster $version/main" >&2
    pg_createcluster "$version" main >/dev/null
  fi
  echo "starting PostgreSQL cluster $version/main" >&2
  pg_ctlcluster --skip-systemctl-redirect "$version" main start || true
}

install_server() {
  [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null || return 1
  echo "installing PostgreSQL with apt-get" >&2
  apt-get update -qq && apt-get install -y -qq postgresql >/dev/null
}

if ! ready; then
  start_installed_cluster || { install_server && start_installed_cluster; } ||
    loud "PostgreSQL is not installed and could not be installed." \
         "Every database test runs on SQLite AND PostgreSQL; the suite cannot pass without it." \
         "Install it (apt-get install postgresql) or point BROKKR_TEST_POSTGRES_URL at a server."
  for _ in $(seq 1 60); do ready && break; sleep 0.5; done
  ready || loud "PostgreSQL was started but does not accept connections on $host:$port."
fi

if ! psql "$url" -Atqc 'SELECT 1' >/dev/null 2>&1; then
  loud "PostgreSQL answers on $host:$port but $url cannot log in." \
       "The tests need a role that may CREATE DATABASE (trust auth for postgres on 127.0.0.1 here)."
fi

BROKKR_TEST_POSTGRES_URL="$url" "$(dirname "$0")/drop-test-databases.sh"
echo "PostgreSQL ready at $url" >&2
