"""Integration tests drive the adapters and services against the stack's real servers."""

from __future__ import annotations

import os
import subprocess
from pathlib import Path

import pytest
from redis.asyncio import Redis

from users.adapters.db import ShardedDatabase
from users.settings import Settings as UsersSettings

ROOT = Path(__file__).resolve().parents[2]


@pytest.fixture(scope="session")
async def db():
    database = ShardedDatabase(UsersSettings())
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def scratch_redis():
    """A Redis database of its own (15), so adapter tests never meet the worker's keys."""
    base = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:56379/0").rsplit("/", 1)[0]
    client = Redis.from_url(f"{base}/15")
    await client.flushdb()
    yield client
    await client.aclose()


def stack(*args: str) -> None:
    """Drive the running stack's processes (stop one, start what is missing)."""
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), *args], check=True, capture_output=True)


@pytest.fixture
def relay_stopped():
    """Every relay is down for the test body (a crash between commit and publish), and
    back up afterwards whatever happens."""
    for i in range(1, int(os.environ.get("USERS_RELAY_COUNT", "1")) + 1):
        stack("stop-app", f"relay-{i}")
    try:
        yield
    finally:
        stack("start-apps")
