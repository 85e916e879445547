#!/usr/bin/env bash
# Throwaway PostgreSQL (Debian's postgresql, 15) for the tests: its own data directory and loopback
# port, no durability, stopped by the PID it recorded. Debian's own `main` cluster is left alone.
#
#   bash scripts/postgres.sh up|down|url|status|stop|start
#
# `stop` and `start` stop the server and start it again on the same data (the outage tests).
#
# Parameters (environment):
#   POSTGRES_BASE  state directory, wiped by `up` and `down`   (default /tmp/atrium-postgres)
#   POSTGRES_PORT  loopback port                               (default 55432)
#
# Roles: `atrium` (superuser, trust: no password) is what `url` prints, a base URL whose database tests
# replace with one of their own (`create database t_<random>`); `atrium_pw` (password `atrium_pw`,
# checked with scram-sha-256) is there for the wrong-credentials tests.
set -euo pipefail

BASE=${POSTGRES_BASE:-/tmp/atrium-postgres}
PORT=${POSTGRES_PORT:-55432}
DATA=$BASE/data
MARKER=$BASE/.atrium-test-postgres

die() {
  echo "postgres.sh: $*" >&2
  exit 1
}
say() { echo "[postgres] $*"; }

[[ $BASE == /* && $BASE != / && $BASE != *..* && $BASE =~ ^[A-Za-z0-9_./-]+$ ]] ||
  die "POSTGRES_BASE must be an absolute path of [A-Za-z0-9_./-] (got '$BASE')"
[[ $PORT =~ ^[0-9]+$ ]] && ((PORT >= 1024 && PORT <= 65535)) || die "POSTGRES_PORT must be a number in 1024..65535"

bindir() {
  local d
  for d in /usr/lib/postgresql/15/bin /usr/lib/postgresql/*/bin; do
    [ -x "$d/initdb" ] && { echo "$d"; return; }
  done
  die "PostgreSQL is not installed (Debian package postgresql; scripts/deps.sh test installs it)"
}

# initdb and postgres refuse to run as root: as root they run as the package's `postgres` user.
as_owner() {
  if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

server_pid() {
  [ -f "$DATA/postmaster.pid" ] || return 1
  local pid
  pid=$(head -1 "$DATA/postmaster.pid")
  [[ $pid =~ ^[0-9]+$ ]] && kill -0 "$pid" 2>/dev/null && echo "$pid"
}

url() { echo "postgres://atrium@127.0.0.1:$PORT/postgres"; }

cmd_down() {
  local pid i
  if pid=$(server_pid); then
    # SIGINT is PostgreSQL's "fast" shutdown: clients are disconnected, no waiting for them.
    kill -INT "$pid" 2>/dev/null || true
    for ((i = 0; i < 300; i++)); do
      kill -0 "$pid" 2>/dev/null || break
      sleep 0.1
    done
    if kill -0 "$pid" 2>/dev/null; then
      say "server $pid did not stop in 30 s; killing it"
      kill -KILL "$pid" 2>/dev/null || true
    fi
    say "stopped (pid $pid)"
  fi
  # Only ever wipe a directory this script made.
  if [ -d "$BASE" ]; then
    [ -f "$MARKER" ] || die "$BASE exists but was not made by this script; not removing it"
    rm -rf "$BASE"
  fi
}

start_server() {
  as_owner "$1/pg_ctl" -D "$DATA" -l "$BASE/postgres.log" -w -t 60 start \
    -o "-c listen_addresses=127.0.0.1 -p $PORT -k $BASE -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=300" \
    >/dev/null || { tail -20 "$BASE/postgres.log" >&2; die "the server did not start"; }
}

# Stops the server (fast shutdown), keeping its data.
cmd_stop() {
  local pid i
  pid=$(server_pid) || { say "not running"; return 0; }
  kill -INT "$pid" 2>/dev/null || true
  for ((i = 0; i < 300; i++)); do
    kill -0 "$pid" 2>/dev/null || { say "stopped (pid $pid)"; return 0; }
    sleep 0.1
  done
  die "server $pid did not stop in 30 s"
}

# Starts the server made by `up` again (after `stop`).
cmd_start() {
  local bin
  bin=$(bindir)
  [ -f "$MARKER" ] && [ -d "$DATA" ] || die "no server made by \`up\` in $BASE"
  server_pid >/dev/null && { say "running already"; return 0; }
  start_server "$bin"
  say "up again on 127.0.0.1:$PORT (pid $(server_pid))"
}

cmd_up() {
  local bin
  bin=$(bindir)
  cmd_down >/dev/null
  if (exec 3<>"/dev/tcp/127.0.0.1/$PORT") 2>/dev/null; then
    die "port $PORT is in use (choose another POSTGRES_PORT)"
  fi
  mkdir -p "$BASE"
  touch "$MARKER"
  if [ "$(id -u)" -eq 0 ]; then
    id postgres >/dev/null 2>&1 || die "no Unix user postgres (is the postgresql package installed?)"
    chown postgres:postgres "$BASE"
  fi
  chmod 700 "$BASE"
  as_owner "$bin/initdb" -D "$DATA" -U atrium --auth=trust -E UTF8 --locale=C.UTF-8 >"$BASE/initdb.log" 2>&1 ||
    { cat "$BASE/initdb.log" >&2; die "initdb failed"; }
  # First match wins: atrium_pw must give its password, everyone else on loopback is trusted.
  cat >"$DATA/pg_hba.conf" <<'EOF'
local all all trust
host all atrium_pw 127.0.0.1/32 scram-sha-256
host all all 127.0.0.1/32 trust
EOF
  start_server "$bin"
  as_owner "$bin/psql" -q -h 127.0.0.1 -p "$PORT" -U atrium -d postgres -v ON_ERROR_STOP=1 \
    -c "create role atrium_pw login password 'atrium_pw'" >/dev/null
  say "up on 127.0.0.1:$PORT (pid $(server_pid), data in $DATA): $(url)"
}

case "${1:-}" in
  up) cmd_up ;;
  down) cmd_down ;;
  url) url ;;
  stop) cmd_stop ;;
  start) cmd_start ;;
  status) if pid=$(server_pid); then say "running (pid $pid) on 127.0.0.1:$PORT"; else say "not running"; exit 1; fi ;;
  *) echo "usage: $0 up|down|url|status|stop|start" >&2; exit 2 ;;
esac
