"""API.md's three sections for clients (refreshing, live updates, read your own writes),
end to end through the gateway again, with the read model on Redis Cluster: the
Timeline API and the workers are restarted on the test stack's three-node cluster, the
same tests run against them, and the stack is put back as it was."""

from __future__ import annotations

import asyncio
import os
import re
import subprocess
import sys
from pathlib import Path

import pytest

from tests.support import ROOT, stack, workers_own_partitions

CLUSTER_PORTS = os.environ.get("REDIS_CLUSTER_PORTS", "").split()
WORKERS = [f"worker-{i}" for i in range(1, int(os.environ.get("TIMELINE_WORKER_COUNT", "1")) + 1)]
READ_MODEL = ["timeline-api", *WORKERS]
LOGS = Path(os.environ.get("STACK_DIR", ROOT / ".local")) / "logs"
# What the read model said that tells a fault from a rebalance: its warnings and errors,
# its starts, and the workers' partition assignments.
TELLING = re.compile(r'"level":\s*"(WARNING|ERROR|CRITICAL)"|===== starting|partitions assigned')
MODULES = ["tests/e2e/test_refresh.py", "tests/e2e/test_live_stream.py", "tests/e2e/test_read_your_writes.py"]

pytestmark = pytest.mark.skipif(not CLUSTER_PORTS, reason="no Redis Cluster in this stack (make test starts one)")


def _restart_read_model(env: dict[str, str]) -> None:
    for name in READ_MODEL:
        stack("stop-app", name)
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/stack.sh"), "start-apps"], env=env, check=True, capture_output=True
    )
    # A worker answers before its consumer group has given it partitions, and the
    # restarted workers rejoin one after the other: until that rebalance is over, no
    # event is fanned out. The modules' waits (10 s) are for deliveries, not for it
    # (the fault suite times a worker's return: "kill -9 of a worker").
    asyncio.run(workers_own_partitions(len(WORKERS)))


def _log_ends() -> dict[Path, int]:
    return {log: log.stat().st_size for name in READ_MODEL if (log := LOGS / f"{name}.log").exists()}


def _said_since(ends: dict[Path, int]) -> str:
    """The telling lines the read model logged since `ends`: in the failure's message,
    as the logs go with the stack's directory (a CI clone's)."""
    out = []
    for log, end in ends.items():
        with log.open("rb") as f:
            f.seek(end if log.stat().st_size >= end else 0)  # (a restart may have rotated it)
            said = f.read().decode(errors="replace").splitlines()
        lines = [line[:400] for line in said if TELLING.search(line)]
        out += [f"---- {log.name}", *lines[-40:]]
    return "\n".join(out)


def test_refresh_live_updates_and_own_writes_hold_on_redis_cluster() -> None:
    on_cluster = {
        **os.environ,
        "TIMELINE_REDIS_URL": f"redis://127.0.0.1:{CLUSTER_PORTS[0]}/0",
        "TIMELINE_REDIS_CLUSTER": "true",
    }
    ends = _log_ends()
    try:
        _restart_read_model(on_cluster)  # (in the try: the stack goes back to one Redis whatever happens)
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *MODULES],
            cwd=ROOT,
            env=on_cluster,  # the tests' own restarts (a stopped worker, a stopping API) stay on it
            capture_output=True,
            text=True,
            timeout=900,
        )
    except AssertionError as settling:  # the workers never owned their partitions
        raise AssertionError(f"{settling}\n{_said_since(ends)}") from None
    finally:
        _restart_read_model(dict(os.environ))
    print(run.stdout[-3000:])
    assert run.returncode == 0, f"on Redis Cluster:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}\n{_said_since(ends)}"
    assert " passed" in run.stdout and "skipped" not in run.stdout
