#!/usr/bin/env bash
# `make test`: start the test stack (deploy/local/test-env.sh), run pytest on the given
# paths against it, then stop it (TEST_KEEP_STACK=1 keeps it for quick re-runs).
# Exits with pytest's status.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=test-env.sh
source "$HERE/test-env.sh"
# shellcheck source=env.sh
source "$HERE/env.sh"
# shellcheck source=lib.sh
source "$HERE/lib.sh"

started=$(date +%s)
bash "$HERE/stack.sh" up
say "stack up in $(( $(date +%s) - started ))s; running pytest $*"
status=0
"$ROOT/.venv/bin/python" -m pytest "$@" || status=$?
if [ "$status" != 0 ]; then
  # The logs go with the stack's directory (CI's clone): what the services said about a
  # failure stays in the output. Each app's last warnings and errors, with its starts
  # and its workers' partition assignments, to tell a fault from a rebalance.
  for log in "$LOG_DIR"/{users-api,timeline-api,relay-*,worker-*}.log; do
    [ -f "$log" ] || continue
    echo "---- $(basename "$log"): its last warnings, errors, starts and assignments"
    grep -E '"level": ?"(WARNING|ERROR|CRITICAL)"|===== starting|partitions assigned' "$log" | tail -n 25 | cut -c1-400 || true
  done
fi
if [ "${TEST_KEEP_STACK:-0}" != 1 ]; then
  down_said="$(bash "$HERE/stack.sh" down 2>&1)" || true
  # A server that outlived `down` keeps its port, and the next `make test` cannot
  # start (it has happened, with nothing to say why): say so, with what down said.
  left=""
  for port in "$PG_PORT" "$PG_REPLICA_PORT" "$REDIS_PORT" ${REDIS_CLUSTER_PORTS:-} "$KAFKA_PORT" "$GATEWAY_PORT"; do
    if [ "$port" != 0 ] && port_open 127.0.0.1 "$port"; then left="$left $port"; fi
  done
  if [ -n "$left" ]; then
    say "WARNING: still listening after the stack was stopped:$left; what stopping it said:"
    printf '%s\n' "$down_said" | tail -n 40
  fi
fi
say "tests finished with status $status after $(( $(date +%s) - started ))s"
exit "$status"
