#!/usr/bin/env bash
# The whole local stack: infrastructure (infra.sh) plus the project's own processes.
#
# Usage: deploy/local/stack.sh up|down|status
#   up      install what is missing, start PostgreSQL, Redis, Kafka and nginx, migrate
#           every shard (the seed users come with the migrations), create the topics,
#           start the APIs, the outbox relay(s) and the timeline worker(s), and wait
#           until the gateway serves. Running it again is harmless.
#   down    stop everything `up` started, by pid file, apps first.
#   status  one line per process.
#   stop-app NAME / start-apps   stop one of the project's processes (e.g. relay-1), or
#           start whichever of them is not running: the tests use these to crash and
#           revive a relay or a worker.
#   start-app NAME   start one of them, and wait until it answers.
#   kill NAME   SIGKILL any process of the stack (postgres, kafka, redis, worker-1, ...;
#               with KAFKA_BROKERS=3, kafka is every broker and kafka-2 one of them)
#           with its children, as a crash would; `start-infra` or `up` starts it again.
#   freeze NAME / thaw NAME   SIGSTOP / SIGCONT any process of the stack: hung, not gone.
#   start-infra  start whichever of the servers is not running.
#   replica-delay DELAY   make the PostgreSQL replica apply WAL DELAY late (5s), or 0.
set -euo pipefail

HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=env.sh
source "$HERE/env.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

VENV="${VENV:-$ROOT/.venv}"
PY="$VENV/bin/python"
# Process counts (several workers share the consumer group's partitions; several
# relays split the shards between them, one relay per shard at a time).
: "${USERS_API_WORKERS:=1}" "${TIMELINE_API_WORKERS:=2}" "${USERS_RELAY_COUNT:=1}" "${TIMELINE_WORKER_COUNT:=1}"
: "${USERS_RELAY_METRICS_BASE_PORT:=9101}" "${TIMELINE_WORKER_METRICS_BASE_PORT:=9111}"

apps() {
  echo users-api timeline-api
  for i in $(seq 1 "$USERS_RELAY_COUNT"); do echo "relay-$i"; done
  for i in $(seq 1 "$TIMELINE_WORKER_COUNT"); do echo "worker-$i"; done
}

api_cmd() {  # MODULE PORT WORKERS (the server and its flags: api-server.sh)
  echo bash "$HERE/api-server.sh" "$1" "$2" "$3"
}

up() {
  bash "$HERE/install.sh"
  make -s -C "$ROOT" venv
  bash "$HERE/infra.sh" start
  say "migrating every shard"
  "$PY" -m users.migrate >>"$LOG_DIR/migrate.log" 2>&1 || { tail -n 30 "$LOG_DIR/migrate.log"; die "migrations failed"; }
  say "creating Kafka topics"
  "$PY" -m users.create_topics >>"$LOG_DIR/topics.log" 2>&1 || { tail -n 30 "$LOG_DIR/topics.log"; die "topic creation failed"; }
  start_apps
  wait_ready
  say "stack is up: gateway http://localhost:$GATEWAY_PORT (logs in $LOG_DIR)"
}

start_api() {  # NAME MODULE PORT WORKERS
  local name="$1" workers="$4"
  if [ "$workers" -gt 1 ] && ! is_running "$name"; then
    # Several worker processes: prometheus_client's multiprocess mode sums their
    # metrics at scrape time (a scrape reaches only one of them).
    local dir="$RUN_DIR/prometheus-$name"
    rm -rf "$dir" && mkdir -p "$dir"
    # shellcheck disable=SC2046
    PROMETHEUS_MULTIPROC_DIR="$dir" start_bg "$name" $(api_cmd "$2" "$3" "$workers")
  else
    # shellcheck disable=SC2046
    start_bg "$name" $(api_cmd "$2" "$3" "$workers")
  fi
}

start_app() {  # NAME: start one of the project's processes (as listed by apps)
  local name="$1" i
  case "$name" in
    users-api) start_api users-api users.api.app:create_app "$USERS_API_PORT" "$USERS_API_WORKERS" ;;
    timeline-api) start_api timeline-api timeline.api.app:create_app "$TIMELINE_API_PORT" "$TIMELINE_API_WORKERS" ;;
    relay-*) i="${name#relay-}"
      USERS_RELAY_METRICS_PORT=$((USERS_RELAY_METRICS_BASE_PORT + i - 1)) start_bg "$name" "$PY" -m users.relay ;;
    worker-*) i="${name#worker-}"
      TIMELINE_WORKER_METRICS_PORT=$((TIMELINE_WORKER_METRICS_BASE_PORT + i - 1)) start_bg "$name" "$PY" -m timeline.worker ;;
    *) die "no such process: $name" ;;
  esac
}

wait_app() {  # NAME: until it answers (the APIs: ready, their stores reachable)
  local name="$1" i
  case "$name" in
    users-api) wait_http "http://127.0.0.1:$USERS_API_PORT/ready" 60 users-api ;;
    timeline-api) wait_http "http://127.0.0.1:$TIMELINE_API_PORT/ready" 60 timeline-api ;;
    relay-*) i="${name#relay-}"; wait_http "http://127.0.0.1:$((USERS_RELAY_METRICS_BASE_PORT + i - 1))/metrics" 60 "$name" ;;
    worker-*) i="${name#worker-}"; wait_http "http://127.0.0.1:$((TIMELINE_WORKER_METRICS_BASE_PORT + i - 1))/metrics" 60 "$name" ;;
  esac
}

start_apps() {
  local name
  for name in $(apps); do start_app "$name"; done
}

wait_ready() {
  local name
  for name in $(apps); do wait_app "$name"; done
}

down() {
  local name
  for name in $(apps | tac); do stop_bg "$name" 20; done
  bash "$HERE/infra.sh" stop
}

status() {
  local name
  for name in $(apps); do
    if is_running "$name"; then echo "$name: running (pid $(_pid_of "$name"))"; else echo "$name: stopped"; fi
  done
  bash "$HERE/infra.sh" status || true
}

# "kafka" names every broker of a cluster (a whole outage); kafka-2 names one.
each() {  # VERB NAME
  local verb="$1" name="$2" i
  if [ "$name" = kafka ] && [ "$KAFKA_BROKERS" -gt 1 ]; then
    for ((i = 1; i <= KAFKA_BROKERS; i++)); do "$verb" "kafka-$i"; done
  else
    "$verb" "$name"
  fi
}

case "${1:-}" in
  up) up ;;
  down) down ;;
  status) status ;;
  stop-app) stop_bg "${2:?name of the process}" 20 ;;
  kill) each kill_bg "${2:?name of the process}" ;;
  freeze) each freeze_bg "${2:?name of the process}" ;;
  thaw) each thaw_bg "${2:?name of the process}" ;;
  start-infra) bash "$HERE/infra.sh" start ;;
  replica-delay) bash "$HERE/infra.sh" replica-delay "${2:?a delay such as 5s, or 0}" ;;
  start-apps) start_apps; wait_ready ;;
  start-app) start_app "${2:?name of the process}"; wait_app "$2" ;;
  *) echo "usage: $0 up|down|status|stop-app NAME|start-apps|start-app NAME|kill NAME|freeze NAME|thaw NAME|start-infra|replica-delay DELAY" >&2; exit 2 ;;
esac
