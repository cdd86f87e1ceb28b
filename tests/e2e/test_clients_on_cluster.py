"""API.md's three sections for clients (refreshing, live updates, read your own writes),
end to end through the gateway again, with the read model on Redis Cluster: the
Timeline API and the workers are restarted on the test stack's three-node cluster, the
same tests run against them, and the stack is put back as it was."""

from __future__ import annotations

import os
import subprocess
import sys

import pytest

from tests.support import ROOT, stack

CLUSTER_PORTS = os.environ.get("REDIS_CLUSTER_PORTS", "").split()
WORKERS = [f"worker-{i}" for i in range(1, int(os.environ.get("TIMELINE_WORKER_COUNT", "1")) + 1)]
READ_MODEL = ["timeline-api", *WORKERS]
MODULES = ["tests/e2e/test_refresh.py", "tests/e2e/test_live_stream.py", "tests/e2e/test_read_your_writes.py"]

pytestmark = pytest.mark.skipif(not CLUSTER_PORTS, reason="no Redis Cluster in this stack (make test starts one)")


def _restart_read_model(env: dict[str, str]) -> None:
    for name in READ_MODEL:
        stack("stop-app", name)
    subprocess.run(
        ["bash", str(ROOT / "deploy/local/stack.sh"), "start-apps"], env=env, check=True, capture_output=True
    )


def test_refresh_live_updates_and_own_writes_hold_on_redis_cluster() -> None:
    on_cluster = {
        **os.environ,
        "TIMELINE_REDIS_URL": f"redis://127.0.0.1:{CLUSTER_PORTS[0]}/0",
        "TIMELINE_REDIS_CLUSTER": "true",
    }
    _restart_read_model(on_cluster)
    try:
        run = subprocess.run(
            [sys.executable, "-m", "pytest", "-q", "-p", "no:cacheprovider", *MODULES],
            cwd=ROOT,
            env=on_cluster,  # the tests' own restarts (a stopped worker, a stopping API) stay on it
            capture_output=True,
            text=True,
            timeout=900,
        )
    finally:
        _restart_read_model(dict(os.environ))
    print(run.stdout[-3000:])
    assert run.returncode == 0, f"on Redis Cluster:\n{run.stdout[-20000:]}\n{run.stderr[-3000:]}"
    assert " passed" in run.stdout and "skipped" not in run.stdout
