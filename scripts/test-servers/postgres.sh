#!/usr/bin/env bash
# A throw-away PostgreSQL cluster for tests, on loopback only.
#
#   postgres.sh start PORT        creates a cluster in a new temporary directory, starts it on
#                                 127.0.0.1:PORT (its unix socket in that directory), creates the
#                                 tables below, waits until it answers, and prints the directory
#                                 (and nothing else) on stdout
#   postgres.sh sql DIR SQL       runs SQL as the superuser (seeding rows in tests)
#   postgres.sh stop DIR          stops the server started in DIR, waits, and removes DIR
#
# Needs Debian's postgresql (`apt-get install -y postgresql`). Run as root, the server runs as
# the `postgres` user the Debian package creates; run as anyone else, as that user.
#
# Seed: database `iot`, owned by the superuser; login role `bastion`, password `bastion-pass`
# (scram-sha-256 over TCP), which may only SELECT:
#   mqtt_users(username text primary key, password_hash text)
#   mqtt_acl(username text, clientid text, access text, topic text)
# No rows: tests insert the users they need.
set -euo pipefail

die() { echo "postgres.sh: $*" >&2; exit 1; }

bindir() {
    local found
    found=$(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V | tail -n 1 || true)
    [ -n "$found" ] && [ -x "$found/initdb" ] || die "PostgreSQL server not found: install Debian's postgresql (apt-get install -y postgresql)"
    echo "$found"
}

# Runs a command as the cluster's owner.
as_owner() {
    if [ "$(id -u)" -eq 0 ]; then
        id postgres >/dev/null 2>&1 || die "no 'postgres' user to run the server as (install Debian's postgresql)"
        runuser -u postgres -- "$@"
    else
        "$@"
    fi
}

cmd_start() {
    local port=$1
    [[ "$port" =~ ^[0-9]+$ ]] || die "PORT must be a number"
    local bin dir
    bin=$(bindir)
    dir=$(mktemp -d /tmp/bastion-pg.XXXXXX)
    chmod 755 "$dir"
    [ "$(id -u)" -eq 0 ] && chown postgres: "$dir"
    as_owner "$bin/initdb" -D "$dir/data" -U postgres --auth-local=trust --auth-host=scram-sha-256 \
        --encoding=UTF8 --no-sync >"$dir/initdb.log" 2>&1 || { cat "$dir/initdb.log" >&2; die "initdb failed"; }
    cat >> "$dir/data/postgresql.conf" <<CONF
listen_addresses = '127.0.0.1'
port = $port
unix_socket_directories = '$dir'
fsync = off
synchronous_commit = off
full_page_writes = off
max_connections = 100
shared_buffers = 32MB
log_min_messages = warning
CONF
    # Foreground server (a direct child whose pid we know), logging into DIR.
    as_owner bash -c "nohup '$bin/postgres' -D '$dir/data' </dev/null >'$dir/postgres.log' 2>&1 & echo \$! > '$dir/postgres.pid'"
    local ready=""
    for _ in $(seq 1 300); do
        if as_owner "$bin/pg_isready" -q -h "$dir" -p "$port" 2>/dev/null; then ready=1; break; fi
        if ! kill -0 "$(cat "$dir/postgres.pid")" 2>/dev/null; then
            tail -n 30 "$dir/postgres.log" >&2
            die "postgres exited during startup"
        fi
        sleep 0.1
    done
    [ -n "$ready" ] || { tail -n 30 "$dir/postgres.log" >&2; die "postgres did not answer within 30 s"; }
    echo "$port" > "$dir/port"
    sql "$dir" postgres "CREATE ROLE bastion LOGIN PASSWORD 'bastion-pass'; CREATE DATABASE iot;"
    sql "$dir" iot "
        CREATE TABLE mqtt_users (username text PRIMARY KEY, password_hash text);
        CREATE TABLE mqtt_acl (username text NOT NULL, clientid text, access text NOT NULL, topic text NOT NULL);
        GRANT SELECT ON mqtt_users, mqtt_acl TO bastion;"
    echo "$dir"
}

sql() {
    local dir=$1 database=$2 statement=$3
    # From stdin, so each statement runs on its own (CREATE DATABASE cannot run in a transaction).
    as_owner psql -X -q -v ON_ERROR_STOP=1 -h "$dir" -p "$(cat "$dir/port")" -U postgres -d "$database" -f - <<<"$statement" >/dev/null
}

cmd_sql() {
    local dir=$1
    [ -f "$dir/port" ] || die "$dir holds no cluster started by this script"
    sql "$dir" iot "$2"
}

cmd_stop() {
    local dir=$1
    [ -f "$dir/postgres.pid" ] || die "$dir holds no cluster started by this script"
    local pid
    pid=$(cat "$dir/postgres.pid")
    # SIGINT: "fast" shutdown, no waiting for clients.
    kill -INT "$pid" 2>/dev/null || true
    for _ in $(seq 1 100); do
        kill -0 "$pid" 2>/dev/null || break
        sleep 0.1
    done
    kill -KILL "$pid" 2>/dev/null || true
    case "$dir" in
        /tmp/bastion-pg.*) rm -rf "$dir" ;;
    esac
}

case "${1:-}" in
    start) [ $# -eq 2 ] || die "usage: postgres.sh start PORT"; cmd_start "$2" ;;
    sql) [ $# -eq 3 ] || die "usage: postgres.sh sql DIR SQL"; cmd_sql "$2" "$3" ;;
    stop) [ $# -eq 2 ] || die "usage: postgres.sh stop DIR"; cmd_stop "$2" ;;
    *) die "usage: postgres.sh start PORT | sql DIR SQL | stop DIR" ;;
esac
