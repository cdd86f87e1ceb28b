"""Helpers shared by the tests: where the stack is, and waiting on conditions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}"
USERS_API = f"http://127.0.0.1:{os.environ.get('USERS_API_PORT', '8001')}"
TIMELINE_API = f"http://127.0.0.1:{os.environ.get('TIMELINE_API_PORT', '8002')}"
SEED = [uuid.UUID(f"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1{i}") for i in range(1, 6)]


def unique_name(prefix: str = "t") -> str:
    """A fresh valid username (1..15 of [A-Za-z0-9_])."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"[:15]


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        time.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(interval)


def stack(*args: str) -> None:
    """Drive the running stack's processes: `stop-app NAME`, `start-apps`."""
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), *args], check=True, capture_output=True)
