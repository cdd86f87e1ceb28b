#!/usr/bin/env bash
# How every Python HTTP API of this project is served, in one place:
#   deploy/local/api-server.sh MODULE:FACTORY PORT WORKERS
# stack.sh runs both services with it, and `make bench` runs its pull-model and
# minimal apps with it, so what the bench compares is served the same way.
# API_SERVER picks the ASGI server (uvicorn, the default, chosen by measurement: see
# docs/benchmarks.md; granian for comparison). The script execs the server, so the
# pid it was started with is the server's.
set -euo pipefail
HERE="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
VENV="${VENV:-$HERE/../../.venv}"
target="${1:?MODULE:FACTORY}" port="${2:?PORT}" workers="${3:-1}"
case "${API_SERVER:-uvicorn}" in
  uvicorn)
    # uvloop and httptools (pinned in requirements.txt) instead of asyncio and h11.
    exec "$VENV/bin/uvicorn" "$target" --factory --host 127.0.0.1 --port "$port" --workers "$workers" \
      --loop uvloop --http httptools --no-access-log --log-level warning --timeout-graceful-shutdown 10 ;;
  granian)  # not in requirements.txt: `pip install granian` to compare
    [ -x "$VENV/bin/granian" ] || { echo "API_SERVER=granian: install granian in $VENV first" >&2; exit 2; }
    exec "$VENV/bin/granian" --interface asgi --factory --host 127.0.0.1 --port "$port" --workers "$workers" \
      --loop uvloop --no-access-log --log-level warning "$target" ;;
  *) echo "API_SERVER must be uvicorn or granian" >&2; exit 2 ;;
esac
