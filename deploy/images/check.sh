#!/usr/bin/env bash
# Run every process of both images against the servers of the stack in force (the one
# deploy/local/env.sh describes: `make run`'s, or the test stack under `make test`) and
# check that each one works: the migrations and the topic creation finish (run on a
# migrated stack, so this is also their second run, which must be harmless), the two
# APIs answer /ready and a request, the relay and the worker serve their metrics.
#
#   deploy/images/check.sh     after deploy/images/build.sh, with the stack up
#
# Each process runs in a container of its image (`buildah run`, chroot isolation, the
# host's network so 127.0.0.1 is the stack), as the image's user, with the command
# docker-compose.yml gives it (deploy/images/commands.py) or the image's CMD; only the
# addresses differ: the stack's servers, and ports of the check's own (IMAGES_*_PORT).
# Whatever it starts it stops, and removes its containers, on any exit.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=common.sh
source "$HERE/common.sh"  # the stack in force (deploy/local/env.sh, lib.sh) and the images' settings

need_root
command -v buildah >/dev/null 2>&1 || die "no buildah: run deploy/images/build.sh (make images) first"
PY="$ROOT/.venv/bin/python"
[ -x "$PY" ] || die "no $PY: run make venv"
# lib.sh's start_bg/stop_bg keep their pid files and logs here, apart from the stack's.
RUN_DIR="$IMAGES_DIR/run"
LOG_DIR="$IMAGES_DIR/logs"
ensure_stack_dirs
started=$(date +%s)

# ---------------------------------------------------------------------------
# Containers and processes, tracked only by the files this script writes in $RUN_DIR
# ---------------------------------------------------------------------------
names=(migrate topics users-api relay timeline-api worker)
CMD=() RUN=()  # set by command_of and run_line

# stop_process NAME: stop a process started by serve the way Docker and Kubernetes do,
# SIGTERM to the command and time to finish (a worker leaves its consumer group, a relay
# publishes its batch). buildah run answers a SIGTERM of its own by killing the command,
# so the signal goes to the command alone: the child of buildah-chroot-exec in the
# process group this script started. Then stop_bg ends whatever is left of the group.
stop_process() {
  local name="image-$1" pgid pid exec_pid deadline
  if is_running "$name"; then
    pgid="$(_pid_of "$name")"
    for exec_pid in $(ps -e -o pid=,pgid=,args= | awk -v g="$pgid" '$2 == g && $3 == "buildah-chroot-exec" { print $1 }'); do
      for pid in $(ps -o pid= --ppid "$exec_pid"); do
        say "stopping $name (SIGTERM to its command, pid $pid)"
        kill -TERM "$pid" 2>/dev/null
      done
    done
    deadline=$((SECONDS + 20))
    while _group_alive "$pgid" && [ "$SECONDS" -lt "$deadline" ]; do sleep 0.2; done
    if ! _group_alive "$pgid"; then
      rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
      say "$name stopped"
      return 0
    fi
  fi
  stop_bg "$name" 5
}

cleanup() {
  local name ctr
  # Stop everything even when stderr has gone (a closed pipe) or a step fails.
  set +e
  trap '' PIPE
  for name in "${names[@]}"; do
    [ -e "$RUN_DIR/image-$name.pid" ] && stop_process "$name"
    if [ -s "$RUN_DIR/image-$name.ctr" ]; then
      ctr="$(cat "$RUN_DIR/image-$name.ctr")"
      buildah rm "$ctr" >/dev/null 2>&1 || true
      rm -f "$RUN_DIR/image-$name.ctr"
    fi
  done
}
# A check interrupted before its trap ran leaves containers (and maybe processes):
# clear them first, then again on every way out.
cleanup
trap cleanup EXIT
trap 'exit 129' HUP
trap 'exit 130' INT
trap 'exit 141' PIPE
trap 'exit 143' TERM

ports=("$IMAGES_USERS_API_PORT" "$IMAGES_TIMELINE_API_PORT" "$IMAGES_RELAY_METRICS_PORT" "$IMAGES_WORKER_METRICS_PORT")
for port in "${ports[@]}"; do
  # Below Linux's ephemeral range, as every port of the local stacks (env.sh says why).
  [ "$port" -lt 32768 ] || die "port $port is not below 32768 (IMAGES_*_PORT)"
  # Taken, it would answer for a process of the check that could not bind it.
  ! port_open 127.0.0.1 "$port" || die "port $port is in use (IMAGES_*_PORT choose the check's ports)"
done
for image in "$USERS_IMAGE" "$TIMELINE_IMAGE"; do
  buildah inspect --type image "$image" >/dev/null 2>&1 \
    || die "no image $image: run deploy/images/build.sh (make images) first"
done
for server in "PostgreSQL $PG_PORT" "Redis $REDIS_PORT" "Kafka $KAFKA_PORT"; do
  port_open 127.0.0.1 "${server#* }" \
    || die "no ${server% *} on 127.0.0.1:${server#* }: start the stack first (make run)"
done

# What the services read, as the stack in force sets it (connection strings, timeouts,
# test settings), minus what each process gets below.
declare -A base_env=()
while IFS= read -r -d '' pair; do
  case "${pair%%=*}" in
    USERS_*|TIMELINE_*|KAFKA_BOOTSTRAP_SERVERS|KAFKA_REQUEST_TIMEOUT_MS|LOG_LEVEL|LOCAL_STACK) base_env["${pair%%=*}"]="${pair#*=}" ;;
  esac
done < <(env -0)
# The timeline processes call the users API of this check, not the stack's.
base_env[TIMELINE_USERS_API_URL]="http://127.0.0.1:$IMAGES_USERS_API_PORT"
base_env[USERS_TIMELINE_API_URL]="http://127.0.0.1:$IMAGES_TIMELINE_API_PORT"

new_container() {  # NAME IMAGE: a fresh container of IMAGE for process NAME
  buildah from --pull=never --quiet "$2" >"$RUN_DIR/image-$1.ctr"
}

# command_of SERVICE IMAGE: CMD=(what docker-compose.yml runs for SERVICE, else IMAGE's CMD).
command_of() {
  local out
  out="$("$PY" "$HERE/commands.py" "$1")"
  [ -n "$out" ] || out="$(buildah inspect --type image --format '{{range .OCIv1.Config.Cmd}}{{println .}}{{end}}' "$2")"
  [ -n "$out" ] || die "$1: no command in docker-compose.yml and no CMD in $2"
  mapfile -t CMD <<<"$out"
}

# run_line NAME IMAGE [VAR=VALUE...] -- ARGS...: RUN=(the command line that runs ARGS in a
# new container of IMAGE for NAME, with the base environment and these variables: one
# -e per name, as a duplicate would be ambiguous).
run_line() {
  local name="$1" image="$2" key; shift 2
  declare -A env=()
  for key in "${!base_env[@]}"; do env["$key"]="${base_env[$key]}"; done
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do env["${1%%=*}"]="${1#*=}"; shift; done
  shift
  new_container "$name" "$image"
  RUN=(buildah run --isolation chroot --network host)
  for key in "${!env[@]}"; do RUN+=(-e "$key=${env[$key]}"); done
  RUN+=("$(cat "$RUN_DIR/image-$name.ctr")" -- "$@")
}

# one_shot SERVICE IMAGE: run SERVICE's command to completion (3 minutes at most).
one_shot() {
  local service="$1" image="$2" log="$LOG_DIR/image-$1.log" t0
  command_of "$service" "$image"
  run_line "$service" "$image" -- "${CMD[@]}"
  t0=$(date +%s)
  say "$service: ${CMD[*]}"
  printf '\n===== %s %s\n' "$(date '+%Y-%m-%d %H:%M:%S')" "${CMD[*]}" >>"$log"
  if ! timeout 180 "${RUN[@]}" >>"$log" 2>&1 </dev/null; then
    tail -n 30 "$log" >&2
    die "$service failed in $image (log $log)"
  fi
  buildah rm "$(cat "$RUN_DIR/image-$service.ctr")" >/dev/null
  rm -f "$RUN_DIR/image-$service.ctr"
  say "$service finished in $(( $(date +%s) - t0 ))s"
}

# serve SERVICE IMAGE URL [VAR=VALUE...] [-- EXTRA ARGS]: start SERVICE's command in the
# background, EXTRA ARGS appended (uvicorn takes the last --host and --port it is
# given), and wait until URL answers 2xx.
serve() {
  local service="$1" image="$2" url="$3"; shift 3
  local vars=()
  while [ "$#" -gt 0 ] && [ "$1" != -- ]; do vars+=("$1"); shift; done
  [ "$#" -gt 0 ] && shift
  command_of "$service" "$image"
  CMD+=("$@")
  run_line "$service" "$image" "${vars[@]}" -- "${CMD[@]}"
  say "$service: ${CMD[*]}"
  start_bg "image-$service" "${RUN[@]}"
  wait_http "$url" 90 "image-$service"
}

# expect_ok URL [CURL ARGS...]: a request a client would make must answer 200.
expect_ok() {
  local url="$1" code; shift
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 10 "$@" "$url" || true)"
  [ "$code" = 200 ] || die "GET $url answered ${code:-nothing}, not 200"
  say "GET $url: 200"
}

# ---------------------------------------------------------------------------
# The users image, then the timeline image (whose processes call the users API)
# ---------------------------------------------------------------------------
seed_writer=a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11 seed_reader=a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15
say "checking $USERS_IMAGE and $TIMELINE_IMAGE against the stack in $STACK_DIR"
one_shot migrate "$USERS_IMAGE"
one_shot topics "$USERS_IMAGE"
serve users-api "$USERS_IMAGE" "http://127.0.0.1:$IMAGES_USERS_API_PORT/ready" \
  -- --host 127.0.0.1 --port "$IMAGES_USERS_API_PORT"
expect_ok "http://127.0.0.1:$IMAGES_USERS_API_PORT/api/v1/users/$seed_writer"
serve relay "$USERS_IMAGE" "http://127.0.0.1:$IMAGES_RELAY_METRICS_PORT/metrics" \
  USERS_RELAY_METRICS_PORT="$IMAGES_RELAY_METRICS_PORT" USERS_RELAY_METRICS_ADDR=127.0.0.1
serve timeline-api "$TIMELINE_IMAGE" "http://127.0.0.1:$IMAGES_TIMELINE_API_PORT/ready" \
  -- --host 127.0.0.1 --port "$IMAGES_TIMELINE_API_PORT"
expect_ok "http://127.0.0.1:$IMAGES_TIMELINE_API_PORT/api/v1/timeline" -H "X-User-ID: $seed_reader"
serve worker "$TIMELINE_IMAGE" "http://127.0.0.1:$IMAGES_WORKER_METRICS_PORT/metrics" \
  TIMELINE_WORKER_METRICS_PORT="$IMAGES_WORKER_METRICS_PORT" TIMELINE_WORKER_METRICS_ADDR=127.0.0.1
say "every process of both images works (${#names[@]} checked in $(( $(date +%s) - started ))s); stopping them"
