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
if [ "${TEST_KEEP_STACK:-0}" != 1 ]; then
  bash "$HERE/stack.sh" down >/dev/null 2>&1 || true
fi
say "tests finished with status $status after $(( $(date +%s) - started ))s"
exit "$status"
