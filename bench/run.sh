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
exec "$ROOT/.venv/bin/python" -m bench
