"""`kill -9` of each of the project's own processes mid-stream: nothing lost or doubled."""

from __future__ import annotations

import asyncio
import os
import subprocess
from pathlib import Path

import httpx

from tests.faults.cases import run_case
from tests.faults.harness import Group, astack
from tests.support import ROOT, TIMELINE_API, USERS_API

STACK_DIR = Path(os.environ.get("STACK_DIR", ROOT / ".local"))


async def test_kill_9_of_a_worker(group: Group) -> None:
    async def fault() -> None:
        await astack("kill", "worker-1")
        await asyncio.sleep(1)
        await astack("start-app", "worker-1")

    await run_case(group, "kill -9 of a worker", fault)


async def test_kill_9_of_a_relay(group: Group) -> None:
    async def fault() -> None:
        await astack("kill", "relay-1")
        await asyncio.sleep(1)
        await astack("start-app", "relay-1")

    await run_case(group, "kill -9 of a relay", fault)


def _server_processes(name: str) -> set[int]:
    """The pids of an API's server processes (uvicorn's workers, children of its pid)."""
    pid = (STACK_DIR / "run" / f"{name}.pid").read_text().strip()
    out = subprocess.run(["ps", "-o", "pid=,args=", "--ppid", pid], capture_output=True, text=True).stdout
    return {int(line.split()[0]) for line in out.splitlines() if "multiprocessing.spawn" in line}


async def _kill_one_server_process(name: str, base: str) -> None:
    before = _server_processes(name)
    victim = min(before)
    subprocess.run(["kill", "-9", str(victim)], check=True)
    # uvicorn's supervisor starts a new process in its place; until then the other serves.
    for _ in range(300):
        now = _server_processes(name)
        if victim not in now and len(now) == len(before):
            break
        await asyncio.sleep(0.1)
    else:
        raise AssertionError(f"{name}: no process replaced the killed one")
    assert httpx.get(f"{base}/ready", timeout=5).status_code == 200


async def test_kill_9_of_a_users_api_process(group: Group) -> None:
    await run_case(group, "kill -9 of a Users API process", lambda: _kill_one_server_process("users-api", USERS_API))


async def test_kill_9_of_a_timeline_api_process(group: Group) -> None:
    await run_case(
        group, "kill -9 of a Timeline API process", lambda: _kill_one_server_process("timeline-api", TIMELINE_API)
    )
