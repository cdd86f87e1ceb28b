"""A burst of requests larger than a process's Redis connections waits for them: every
read is answered, none refused, though Redis was slow to answer meanwhile (frozen for a
moment: every connection busy). redis-py's default pool raised at its 100th connection
instead, and 500 live streams opened at once were answered 503 (a bench run, session 17)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support import GATEWAY, TIMELINE_API, stack, unique_name
from timeline.adapters.store.connection import WaitingPool

# Readers at once, through every Timeline API process: each gets about twice its
# connections (TIMELINE_REDIS_MAX_CONNECTIONS, 100), all waiting on Redis at once.
WORKERS = int(os.environ.get("TIMELINE_API_WORKERS", "2"))
BURST = 2 * 100 * WORKERS + 50
FROZEN_SECONDS = 1.0  # well inside TIMELINE_REDIS_TIMEOUT_SECONDS (5): slow, not down


async def test_a_burst_of_reads_beyond_the_redis_connections_waits_for_them_and_is_served() -> None:
    with httpx.Client(base_url=GATEWAY) as api:
        reader = api.post("/api/v1/users", json={"username": unique_name("Burst")}).json()["user_id"]
        assert api.get("/api/v1/timeline", headers={"X-User-ID": reader}).status_code == 200  # home built
    limits = httpx.Limits(max_connections=BURST, max_keepalive_connections=BURST)
    async with httpx.AsyncClient(base_url=TIMELINE_API, timeout=30, limits=limits) as http:

        async def read() -> int:
            return (await http.get("/api/v1/timeline", headers={"X-User-ID": reader})).status_code

        await asyncio.to_thread(stack, "freeze", "redis")
        try:
            reads = [asyncio.ensure_future(read()) for _ in range(BURST)]
            await asyncio.sleep(FROZEN_SECONDS)  # every read has reached Redis's pool by now
        finally:
            await asyncio.to_thread(stack, "thaw", "redis")
        statuses = await asyncio.gather(*reads)
    refused = [status for status in statuses if status != 200]
    assert not refused, f"{len(refused)} of {BURST} reads not served: {sorted(set(refused))}"


async def test_the_pool_stays_within_its_connections_and_a_command_that_finds_none_free_in_time_fails() -> None:
    # The bound is kept (Redis's connections are the fleet's to share), and a wait has
    # an end: past it the command fails (a 503 from the API), it never hangs.
    url = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0").rsplit("/", 1)[0] + "/15"
    client = Redis.from_pool(WaitingPool.from_url(url, max_connections=2, wait=0.3))
    pool = client.connection_pool
    try:
        assert all(await asyncio.gather(*(client.ping() for _ in range(50))))  # 50 at once over 2
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 2
        held = [await pool.get_connection() for _ in range(2)]
        started = time.monotonic()
        with pytest.raises(RedisConnectionError):
            await client.ping()
        assert time.monotonic() - started >= 0.25
        waiting = asyncio.ensure_future(client.ping())
        await asyncio.sleep(0.05)
        await pool.release(held.pop())  # one comes free: the waiting command takes it
        assert await asyncio.wait_for(waiting, 1)
        await pool.release(held.pop())
    finally:
        await client.aclose()
