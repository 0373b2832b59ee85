#!/usr/bin/env bash
# A throwaway PostgreSQL server on loopback, for the tests of a shared ML Metadata store.
#
#   scripts/postgres.sh start DIR PORT     initdb in DIR, start on 127.0.0.1:PORT, print the URL
#   scripts/postgres.sh stop DIR           stop it (DIR can then be removed)
#   scripts/postgres.sh sql PORT DB SQL    run one SQL statement (tests set up odd states with it)
#
# The superuser is `mlmd` with password `mlmd-test` (scram-sha-256), so the tests
# can also try a wrong one. PostgreSQL refuses to run as root: as root the
# server runs as the `postgres` user. Debian's binaries live in
# /usr/lib/postgresql/<major>/bin; if there are none, Debian's `postgresql` is
# installed (apt-get, as root or with passwordless sudo).
set -euo pipefail
USER_NAME=mlmd
PASSWORD=mlmd-test

bindir() {
  local found
  found=$(command -v initdb 2>/dev/null || ls -d /usr/lib/postgresql/*/bin/initdb 2>/dev/null | sort -V | tail -1 || true)
  if [ -z "$found" ]; then
    local sudo=""
    [ "$(id -u)" = 0 ] || sudo="sudo -n"
    $sudo apt-get update -qq >&2
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq --no-install-recommends postgresql >&2
    found=$(ls -d /usr/lib/postgresql/*/bin/initdb | sort -V | tail -1)
  fi
  dirname "$(readlink -f "$found")"
}

as_server_user() {  # runs "$@" as the user the server runs as
  if [ "$(id -u)" = 0 ]; then
    runuser -u postgres -- "$@"
  else
    "$@"
  fi
}

case "${1:-}" in
  start)
    dir=$(readlink -f "$2"); port=$3; bin=$(bindir)
    mkdir -p "$dir"
    [ "$(id -u)" = 0 ] && chown postgres "$dir"
    printf '%s\n' "$PASSWORD" > "$dir/pwfile"
    [ "$(id -u)" = 0 ] && chown postgres "$dir/pwfile"
    as_server_user "$bin/initdb" -D "$dir/data" -U "$USER_NAME" --auth=scram-sha-256 \
      --pwfile="$dir/pwfile" >"$dir/initdb.log" 2>&1
    as_server_user "$bin/pg_ctl" -D "$dir/data" -l "$dir/server.log" -w \
      -o "-p $port -k $dir -c listen_addresses=127.0.0.1 -c max_connections=200" start >/dev/null
    echo "postgresql://$USER_NAME:$PASSWORD@127.0.0.1:$port/postgres"
    ;;
  stop)
    dir=$(readlink -f "$2"); bin=$(bindir)
    as_server_user "$bin/pg_ctl" -D "$dir/data" -m fast -w stop >/dev/null
    ;;
  sql)
    port=$2; db=$3; sql=$4; bin=$(bindir)
    PGPASSWORD=$PASSWORD "$bin/psql" -h 127.0.0.1 -p "$port" -U "$USER_NAME" -d "$db" \
      -v ON_ERROR_STOP=1 -qAtc "$sql"
    ;;
  *)
    echo "usage: $0 start DIR PORT | stop DIR | sql PORT DB SQL" >&2
    exit 2
    ;;
esac
