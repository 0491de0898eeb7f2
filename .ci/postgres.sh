#!/usr/bin/env bash
# Start a throw-away PostgreSQL 15 cluster with pgvector for the storage contract tests.
#
#   eval "$(.ci/postgres.sh)"          # start (idempotent); exports PAPERRADAR_TEST_POSTGRES_URL
#   .ci/postgres.sh stop               # stop it (pg_ctl stop) and remove the cluster
#
# Installs Debian's postgresql + server headers when missing (apt), builds pgvector from
# ../shared/vendor once, initdb's a cluster under $PAPERRADAR_PG_DIR (default /tmp/paperradar-pg)
# listening on a unix socket only, owned by the non-root user `postgres`, and creates the
# database `paperradar_test`. Everything except the export line goes to stderr.
set -euo pipefail

PGDIR="${PAPERRADAR_PG_DIR:-/tmp/paperradar-pg}"
PGPORT="${PAPERRADAR_PG_PORT:-54329}"
DBNAME="${PAPERRADAR_PG_DB:-paperradar_test}"
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)"
VENDOR="${PAPERRADAR_SHARED_DIR:-$HERE/../shared}/vendor/pgvector-0.8.6.tar.gz"
[ -f "$VENDOR" ] || VENDOR=/work/shared/vendor/pgvector-0.8.6.tar.gz
BIN=/usr/lib/postgresql/15/bin

log() { echo "postgres.sh: $*" >&2; }

as_pg() {
  if [ "$(id -un)" = postgres ]; then "$@"; else runuser -u postgres -- "$@"; fi
}

if [ "${1:-start}" = stop ]; then
  if [ -f "$PGDIR/data/postmaster.pid" ]; then
    as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -m fast -w stop >&2 || true
  fi
  rm -rf "$PGDIR"
  log "stopped"
  exit 0
fi

# pg_config alone (libpq-dev has one) is not enough to build pgvector: check the server headers.
if [ ! -x "$BIN/postgres" ] || [ ! -f /usr/include/postgresql/15/server/postgres.h ] \
  || ! command -v make >/dev/null; then
  log "installing postgresql-15 and its server headers (apt)"
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -qq >&2
  apt-get install -y -qq -o DPkg::Lock::Timeout=600 \
    postgresql postgresql-server-dev-15 build-essential >&2
fi

if [ ! -f /usr/share/postgresql/15/extension/vector.control ]; then
  log "building pgvector from $VENDOR"
  tar xzf "$VENDOR" -C /tmp
  make -s -C /tmp/pgvector-0.8.6 OPTFLAGS="" PG_CONFIG="$BIN/pg_config" >&2
  make -s -C /tmp/pgvector-0.8.6 install PG_CONFIG="$BIN/pg_config" >&2
fi

if [ ! -f "$PGDIR/data/PG_VERSION" ]; then
  log "initdb $PGDIR/data"
  mkdir -p "$PGDIR"
  chown postgres: "$PGDIR" 2>/dev/null || true
  as_pg "$BIN/initdb" -D "$PGDIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >/dev/null
  cat >>"$PGDIR/data/postgresql.conf" <<CONF
listen_addresses = ''
unix_socket_directories = '$PGDIR'
port = $PGPORT
fsync = off
synchronous_commit = off
full_page_writes = off
shared_buffers = 256MB
max_connections = 100
CONF
fi

if ! as_pg "$BIN/pg_ctl" -D "$PGDIR/data" status >/dev/null 2>&1; then
  log "starting on socket $PGDIR port $PGPORT"
  as_pg "$BIN/pg_ctl" -D "$PGDIR/data" -l "$PGDIR/server.log" -w start >/dev/null
fi

if ! as_pg psql -h "$PGDIR" -p "$PGPORT" -U postgres -tAc \
  "SELECT 1 FROM pg_database WHERE datname = '$DBNAME'" | grep -q 1; then
  as_pg psql -h "$PGDIR" -p "$PGPORT" -U postgres -qc "CREATE DATABASE $DBNAME" >&2
fi

URL="postgresql://postgres@/$DBNAME?host=$PGDIR&port=$PGPORT"
echo "export PAPERRADAR_TEST_POSTGRES_URL='$URL'"
