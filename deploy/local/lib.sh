# shellcheck shell=bash
# Helpers shared by the deploy/local scripts. Source env.sh first.
#
# Background processes are tracked ONLY through pid files in $STACK_DIR/run:
# nothing here ever looks processes up or kills them by name, so other copies
# of postgres/redis/nginx/java on the machine are never touched.
#
#   $STACK_DIR/run/NAME.pid    pid of the process (also its process group id)
#   $STACK_DIR/run/NAME.start  its start time (from /proc), so a pid file left
#                              over from an earlier boot is not mistaken for a
#                              live process that merely reused the pid
#   $STACK_DIR/logs/NAME.log   its stdout+stderr (appended)

RUN_DIR="$STACK_DIR/run"
LOG_DIR="$STACK_DIR/logs"

# Progress line on stderr (stdout stays free for real output).
say() {
  printf '%s [stack] %s\n' "$(date '+%H:%M:%S')" "$*" >&2
}

die() {
  say "ERROR: $*"
  exit 1
}

# Create the state directories; the .gitignore keeps the whole tree out of git
# even if the repository's own .gitignore does not mention it.
ensure_stack_dirs() {
  mkdir -p "$STACK_DIR" "$RUN_DIR" "$LOG_DIR"
  [ -f "$STACK_DIR/.gitignore" ] || printf '*\n' >"$STACK_DIR/.gitignore"
}

# Print the last 30 lines of $LOG_DIR/NAME.log (if any) to stderr.
show_log_tail() {
  local log="$LOG_DIR/$1.log"
  if [ -s "$log" ]; then
    say "last 30 lines of $log:"
    tail -n 30 "$log" | sed 's/^/    | /' >&2
  else
    say "(no log at $log)"
  fi
}

# Field 22 of /proc/PID/stat: start time in clock ticks since boot. The comm
# field (2) may contain spaces, so cut everything up to the closing paren.
_proc_start_time() {
  local stat
  stat="$(cat "/proc/$1/stat" 2>/dev/null)" || return 1
  stat="${stat##*) }"
  # After the paren, field 3 (state) is word 0, so field 22 is word 19.
  local -a fields
  read -r -a fields <<<"$stat"
  printf '%s\n' "${fields[19]}"
}

_pid_of() {
  local f="$RUN_DIR/$1.pid"
  [ -s "$f" ] || return 1
  local pid
  pid="$(tr -dc '0-9' <"$f")"
  [ -n "$pid" ] || return 1
  printf '%s\n' "$pid"
}

# is_running NAME: true if the pid file names a live (non-zombie) process that
# is the one we started.
is_running() {
  local pid state want have
  pid="$(_pid_of "$1")" || return 1
  kill -0 "$pid" 2>/dev/null || return 1
  state="$(ps -o stat= -p "$pid" 2>/dev/null | tr -d ' ')"
  case "$state" in ''|Z*) return 1 ;; esac
  if [ -s "$RUN_DIR/$1.start" ]; then
    want="$(cat "$RUN_DIR/$1.start")"
    have="$(_proc_start_time "$pid")" || return 1
    [ "$want" = "$have" ] || return 1
  fi
  return 0
}

# start_bg NAME CMD...: start CMD detached (own session and process group, so
# it survives this shell and stop_bg can signal everything it spawned), with
# stdout+stderr appended to $LOG_DIR/NAME.log. No-op if already running.
start_bg() {
  local name="$1"; shift
  ensure_stack_dirs
  if is_running "$name"; then
    say "$name already running (pid $(_pid_of "$name"))"
    return 0
  fi
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
  local log="$LOG_DIR/$name.log"
  # Logs are kept across restarts; one past 100 MiB (a day of `make bench` grows the
  # gateway's and the Timeline API's by gigabytes) starts afresh, the last one kept as .1.
  if [ -f "$log" ] && [ "$(stat -c %s "$log")" -gt $((100 * 1024 * 1024)) ]; then
    mv -f "$log" "$log.1"
  fi
  # One JSON line, as every line the services write (`jq` reads the whole file).
  local command="${*//\\/\\\\}"
  command="${command//\"/\\\"}"
  printf '{"time":"%s","level":"INFO","name":"stack","message":"===== starting","command":"%s"}\n' \
    "$(date -u '+%Y-%m-%dT%H:%M:%S.000Z')" "$command" >>"$log"
  # The inner shell writes its own pid and then execs CMD, so the pid file is
  # right even if setsid had to fork. setsid makes that pid the process group
  # id too. nohup: belt and braces against SIGHUP from a closing terminal.
  # shellcheck disable=SC2016  # $$ and $@ are for the inner shell
  setsid nohup bash -c 'echo $$ >"$0"; exec "$@"' "$RUN_DIR/$name.pid" "$@" \
    >>"$log" 2>&1 </dev/null &
  # Wait (briefly) for the pid file, then record the start time.
  local pid
  for _ in $(seq 1 50); do
    pid="$(_pid_of "$name")" && break
    sleep 0.1
  done
  [ -n "${pid:-}" ] || { show_log_tail "$name"; die "$name: failed to start"; }
  _proc_start_time "$pid" >"$RUN_DIR/$name.start" 2>/dev/null || true
  say "$name started (pid $pid, log $log)"
}

# True while any non-zombie process of process group PGID exists.
_group_alive() {
  ps -e -o pgid=,stat= 2>/dev/null | awk -v g="$1" '$1 == g && $2 !~ /^Z/ { found = 1 } END { exit !found }'
}

# stop_bg NAME [TIMEOUT] [SIGNAL] [group|leader]: send SIGNAL (default TERM)
# to the process group we started (or, with "leader", only to its leader, for
# servers such as postgres that shut their children down themselves), wait up
# to TIMEOUT seconds (default 20) for the whole group to exit, then SIGKILL
# the group. Harmless if it is not running. Only ever uses the pid file.
stop_bg() {
  local name="$1" timeout="${2:-20}" sig="${3:-TERM}" scope="${4:-group}" pid
  if ! is_running "$name"; then
    rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
    say "$name not running"
    return 0
  fi
  pid="$(_pid_of "$name")"
  say "stopping $name (pid $pid, SIG$sig)"
  if [ "$scope" = leader ]; then
    kill -s "$sig" "$pid" 2>/dev/null || true
  else
    # start_bg made pid a process group leader: the group holds its children
    # (nginx workers, ...).
    kill -s "$sig" -- "-$pid" 2>/dev/null || kill -s "$sig" "$pid" 2>/dev/null || true
  fi
  local deadline=$((SECONDS + timeout))
  while _group_alive "$pid"; do
    if [ "$SECONDS" -ge "$deadline" ]; then
      say "$name did not stop within ${timeout}s, sending SIGKILL"
      kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
      sleep 0.5
      break
    fi
    sleep 0.1
  done
  rm -f "$RUN_DIR/$name.pid" "$RUN_DIR/$name.start"
  say "$name stopped"
}

# kill_bg NAME: SIGKILL the whole process group we started, as a crash or the OOM
# killer would (the fault tests use it); the pid file stays, naming a dead process,
# so `is_running` says no and a start brings it back. Only ever uses the pid file.
kill_bg() {
  local name="$1" pid
  is_running "$name" || die "$name is not running"
  pid="$(_pid_of "$name")"
  say "killing $name (pid $pid, SIGKILL to its process group)"
  kill -s KILL -- "-$pid" 2>/dev/null || kill -s KILL "$pid" 2>/dev/null || true
  while _group_alive "$pid"; do sleep 0.05; done
}

# freeze_bg NAME / thaw_bg NAME: SIGSTOP / SIGCONT the process group, as a hung
# process looks to its clients (connections open, nothing answers): the fault tests
# show that every client's timeout turns that into a retry.
freeze_bg() {
  is_running "$1" || die "$1 is not running"
  say "freezing $1 (SIGSTOP to its process group)"
  kill -s STOP -- "-$(_pid_of "$1")"
}

thaw_bg() {
  say "thawing $1 (SIGCONT to its process group)"
  kill -s CONT -- "-$(_pid_of "$1")"
}

# port_open HOST PORT: true if something accepts TCP connections there.
port_open() {
  (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null
}

# Internal: the waiting loop shared by the wait_* functions.
# _wait_until TIMEOUT LABEL WHAT CHECK...: run CHECK until it succeeds, print
# progress every 5 s, fail fast if the process LABEL (if we track one) died.
_wait_until() {
  local timeout="$1" label="$2" what="$3"; shift 3
  local start now next_note
  start="$(date +%s)"; next_note=$((start + 5))
  while :; do
    if "$@" >/dev/null 2>&1; then
      say "$label ready ($what, $(( $(date +%s) - start ))s)"
      return 0
    fi
    if [ -e "$RUN_DIR/$label.pid" ] && ! is_running "$label"; then
      show_log_tail "$label"
      die "$label exited while waiting for $what"
    fi
    now="$(date +%s)"
    if [ "$now" -ge $((start + timeout)) ]; then
      show_log_tail "$label"
      die "$label not ready after ${timeout}s ($what)"
    fi
    if [ "$now" -ge "$next_note" ]; then
      say "waiting for $label ($what) ... $((now - start))s"
      next_note=$((now + 5))
    fi
    sleep 0.25
  done
}

# wait_tcp HOST PORT TIMEOUT LABEL
wait_tcp() {
  _wait_until "$3" "$4" "tcp $1:$2" port_open "$1" "$2"
}

_http_2xx() {
  local code
  code="$(curl -s -o /dev/null -w '%{http_code}' --max-time 2 "$1")" || return 1
  case "$code" in 2??) return 0 ;; *) return 1 ;; esac
}

# wait_http URL TIMEOUT LABEL: until URL answers 2xx.
wait_http() {
  _wait_until "$2" "$3" "GET $1" _http_2xx "$1"
}

# wait_cmd TIMEOUT LABEL CMD...: until CMD exits 0 (for readiness probes such
# as `psql -c 'SELECT 1'`).
wait_cmd() {
  local timeout="$1" label="$2"; shift 2
  _wait_until "$timeout" "$label" "$*" "$@"
}
