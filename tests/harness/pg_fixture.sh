#!/usr/bin/env bash
# The CTest fixture "postgres": a throwaway PostgreSQL 15 cluster for one test run.
#
#   pg_fixture.sh start ENV_FILE   initdb in a fresh temp folder, start on a free port, and
#                                  write the connection to ENV_FILE for the tests
#   pg_fixture.sh stop ENV_FILE    stop the cluster and delete its folder
#
# Tuned for tests (fsync off): the data is thrown away anyway.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
# shellcheck source=../../tools/dev/pg.sh
source "$here/../../tools/dev/pg.sh"

action=${1:?usage: pg_fixture.sh start|stop ENV_FILE}
env_file=${2:?usage: pg_fixture.sh start|stop ENV_FILE}

stop_cluster() {
  if [[ -f "$env_file" ]]; then
    local dir
    dir=$(sed -n 's/^FLEETCORE_TEST_PG_DIR=//p' "$env_file")
    if [[ -n "$dir" && -d "$dir" ]]; then
      pg_stop "$dir/data"
      rm -rf "$dir"
    fi
    rm -f "$env_file"
  fi
}

case "$action" in
  start)
    stop_cluster  # a cluster left behind by an interrupted run
    dir=$(mktemp -d /tmp/fleetcore-test-pg.XXXXXX)
    chmod 755 "$dir"
    [[ $(id -u) -eq 0 ]] && chown postgres: "$dir"
    port=$(pg_free_port)
    pg_init "$dir/data" "$dir/password"
    pg_start "$dir/data" "$port" "$dir/postgres.log" fsync=off synchronous_commit=off \
      full_page_writes=off
    # The services' roles (migration 0011 grants them their schemas), able to log in with
    # the harness's password: the e2e tests run each service as its own role.
    for service in registry policy ca gateway shadow rules; do
      PGPASSWORD=$(cat "$dir/password") "$PG_BIN/psql" -h 127.0.0.1 -p "$port" -U fleetcore \
        -d postgres -qc "CREATE ROLE fleetcore_$service LOGIN PASSWORD '$(cat "$dir/password")'"
    done
    mkdir -p "$(dirname "$env_file")"
    cat >"$env_file" <<EOF
FLEETCORE_TEST_PG_DIR=$dir
FLEETCORE_TEST_PG_HOST=127.0.0.1
FLEETCORE_TEST_PG_PORT=$port
FLEETCORE_TEST_PG_USER=fleetcore
FLEETCORE_TEST_PG_PASSWORD=$(cat "$dir/password")
EOF
    chmod 600 "$env_file"
    echo "test Postgres running on 127.0.0.1:$port ($dir)"
    ;;
  stop)
    stop_cluster
    echo "test Postgres stopped"
    ;;
  *)
    echo "usage: pg_fixture.sh start|stop ENV_FILE" >&2
    exit 2
    ;;
esac
