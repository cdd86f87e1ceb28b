#!/usr/bin/env bash
# `make bench`: measure the stack that `make run` started (same settings: run both with
# the same environment). Installs what the bench needs first (wrk, through the stack's
# idempotent install script), then runs `python -m bench`: progress on stderr, the
# table on stdout, docs/benchmarks.md and docs/benchmarks.json written.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
# shellcheck source=../deploy/local/env.sh
source "$HERE/../deploy/local/env.sh"
bash "$ROOT/deploy/local/install.sh" >/dev/null
cd "$ROOT"
# The load comes from one address at thousands of requests a second: the gateway's
# per-address limits are raised for the run (nginx reloads; the per-user limit stays,
# as the load rotates over thousands of users), and put back afterwards.
bench_limits() {
  GATEWAY_ADDRESS_RATE_LIMIT="$1" GATEWAY_ADDRESS_RATE_BURST="$2" GATEWAY_CONNECTIONS_PER_ADDRESS="$3" \
    bash "$ROOT/deploy/local/infra.sh" start >/dev/null
}
restore() {
  bench_limits "$GATEWAY_ADDRESS_RATE_LIMIT" "$GATEWAY_ADDRESS_RATE_BURST" "$GATEWAY_CONNECTIONS_PER_ADDRESS"
  # bench/tweet_split.py freezes the workers for a while: never leave them so (a bench
  # stopped meanwhile skips its own thaw). SIGCONT to a running worker changes nothing.
  local i
  for ((i = 1; i <= ${TIMELINE_WORKER_COUNT:-1}; i++)); do
    bash "$ROOT/deploy/local/stack.sh" thaw "worker-$i" >/dev/null 2>&1 || true
  done
}
trap restore EXIT
bench_limits 1000000r/s 1000000 60000  # nginx takes at most 65535
# `bench/run.sh bench.fleet` runs that module instead (make bench-fleet).
"$ROOT/.venv/bin/python" -m "${1:-bench}"
