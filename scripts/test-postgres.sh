#!/usr/bin/env bash
# test-postgres.sh: a throwaway PostgreSQL server for mcsim's PostgreSQL
# tests, on loopback only. It installs Debian's postgresql package when no
# server binaries are present (as root; apt-get update first), makes a data
# dir with initdb (as the postgres user when run as root: initdb refuses
# root), starts it on 127.0.0.1:PORT with its socket in the data dir and
# fsync on (the durability tests need a real commit), creates the database
# mcsim_test, and prints the DSN to use as MCSIM_TEST_POSTGRES.
#
# Idempotent: a server already answering on PORT is reused (and the database
# created if missing) if it runs with fsync on; otherwise it is refused, as
# the durability tests would prove nothing. Progress goes to stderr; stdout
# is only the DSN.
#
#   export MCSIM_TEST_POSTGRES=$(scripts/test-postgres.sh start)
#   scripts/test-postgres.sh stop
#
# Environment: MCSIM_PG_PORT (default 5433), MCSIM_PG_DIR (default
# /tmp/mcsim-pg-$PORT), MCSIM_PG_DB (the database, default mcsim_test;
# mcsim_test holds the tests' schemas, use another for mcsim up).
set -euo pipefail

port="${MCSIM_PG_PORT:-5433}"
dir="${MCSIM_PG_DIR:-/tmp/mcsim-pg-$port}"
db="${MCSIM_PG_DB:-mcsim_test}"
user=postgres
dsn="postgres://$user@127.0.0.1:$port/$db?sslmode=disable"
say() { echo "test-postgres: $*" >&2; }

bindir() {
  # The newest installed major version with server binaries: a newer
  # client-only one (postgresql-client-NN has psql but no initdb) is
  # passed over.
  local d
  for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -rV); do
    if [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ]; then
      echo "$d"
      return 0
    fi
  done
  return 1
}

# as_owner runs a command as the data dir's owner: postgres when we are
# root, else ourselves (then the server runs as the current user).
as_owner() {
  if [ "$(id -u)" = 0 ]; then
    # From /: the caller's directory (a checkout under /root) may be
    # closed to postgres.
    (cd / && su postgres -s /bin/sh -c "$(printf '%q ' "$@")")
  else
    "$@"
  fi
}

start() {
  local bin
  bin=$(bindir || true)
  if [ -z "$bin" ]; then
    [ "$(id -u)" = 0 ] || { say "PostgreSQL is not installed and we are not root: apt-get install postgresql"; exit 1; }
    say "installing Debian's postgresql"
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
    bin=$(bindir || true)
    if [ -z "$bin" ]; then
      say "installed postgresql but found no server binaries (initdb, pg_ctl) in /usr/lib/postgresql/*/bin"
      exit 1
    fi
  fi
  if [ "$(id -u)" != 0 ]; then
    user=$(id -un)
    dsn="postgres://$user@127.0.0.1:$port/$db?sslmode=disable"
  fi
  if ! "$bin/pg_isready" -q -h 127.0.0.1 -p "$port"; then
    if [ ! -f "$dir/PG_VERSION" ]; then
      say "initdb $dir"
      mkdir -p "$dir"
      [ "$(id -u)" = 0 ] && chown postgres: "$dir"
      chmod 700 "$dir"
      as_owner "$bin/initdb" -D "$dir" -U "$user" --auth=trust -E UTF8 --no-locale >/dev/null
    fi
    say "starting on 127.0.0.1:$port"
    as_owner "$bin/pg_ctl" -D "$dir" -l "$dir/server.log" -w -t 60 \
      -o "-c listen_addresses=127.0.0.1 -p $port -k $dir -c fsync=on -c synchronous_commit=on -c max_connections=200" start >/dev/null
  else
    say "reusing the server on 127.0.0.1:$port"
    # The durability tests need commits that reach the disk; a server
    # started elsewhere with fsync off would pass them without proving it.
    local fsync
    fsync=$("$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc "SHOW fsync" 2>/dev/null || true)
    if [ "$fsync" != "on" ]; then
      say "the server on 127.0.0.1:$port has fsync=${fsync:-unknown (could not ask it)}; the tests need fsync=on: stop it or set MCSIM_PG_PORT to another port"
      exit 1
    fi
  fi
  if ! "$bin/psql" -h 127.0.0.1 -p "$port" -U "$user" -d postgres -tAc "SELECT 1 FROM pg_database WHERE datname='$db'" | grep -q 1; then
    "$bin/createdb" -h 127.0.0.1 -p "$port" -U "$user" "$db"
  fi
  echo "$dsn"
}

stop() {
  local bin
  bin=$(bindir || true)
  if [ -n "$bin" ] && [ -f "$dir/postmaster.pid" ]; then
    as_owner "$bin/pg_ctl" -D "$dir" -m fast -w stop >/dev/null && say "stopped"
  fi
}

case "${1:-start}" in
  start) start ;;
  stop) stop ;;
  *) say "usage: $0 start|stop"; exit 2 ;;
esac
