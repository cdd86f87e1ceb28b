"""A burst of requests larger than a process's Redis connections waits for them: every
read is answered, none refused, though Redis was slow to answer meanwhile (frozen for a
moment: every connection busy). redis-py's default pool raised past its 100th connection
instead, and 500 live streams opened at once were answered 503 (a bench run, session 17)."""

from __future__ import annotations

import asyncio
import os
import time

import httpx
import pytest
from redis.asyncio import Redis
from redis.exceptions import ConnectionError as RedisConnectionError

from tests.support import GATEWAY, TIMELINE_API, eventually, stack, unique_name
from timeline.adapters.store.changes import ChangeFeed
from timeline.adapters.store.connection import WaitingPool

# Readers at once, through every Timeline API process: each gets about twice its
# connections, all waiting on Redis at once.
WORKERS = int(os.environ.get("TIMELINE_API_WORKERS", "2"))
BURST = 2 * int(os.environ.get("TIMELINE_REDIS_MAX_CONNECTIONS", "100")) * WORKERS + 50
SCRATCH = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0").rsplit("/", 1)[0] + "/15"
# Redis stays frozen until every read is under way in the API, at most this long: well
# inside TIMELINE_REDIS_TIMEOUT_SECONDS (5), slow, not down.
FROZEN_AT_MOST = 3.0


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
            # Every read is in the API's hands, each process's Redis connections all
            # taken, the rest waiting for one.
            await eventually(_all_under_way, timeout=FROZEN_AT_MOST, interval=0.05, what=f"{BURST} reads under way")
        finally:
            await asyncio.to_thread(stack, "thaw", "redis")
        statuses = await asyncio.gather(*reads)
    refused = [status for status in statuses if status != 200]
    assert not refused, f"{len(refused)} of {BURST} reads not served: {sorted(set(refused))}"


async def _all_under_way() -> bool:
    """Whether the Timeline API's processes have all the burst's reads in progress."""
    series = 'litestar_requests_in_progress{app_name="timeline_service",method="GET",path="/api/v1/timeline"'
    async with httpx.AsyncClient(base_url=TIMELINE_API) as http:  # (the burst's client is full)
        lines = (await http.get("/metrics")).text.splitlines()
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines if line.startswith(series)) >= BURST


async def test_the_pool_stays_within_its_connections_and_a_command_that_finds_none_free_in_time_fails() -> None:
    # The bound is kept (Redis's connections are the fleet's to share), and a wait has
    # an end: past it the command fails (a 503 from the API), it never hangs.
    client = Redis.from_pool(WaitingPool.from_url(SCRATCH, max_connections=2, wait=5))
    pool = client.connection_pool
    try:
        assert all(await asyncio.gather(*(client.ping() for _ in range(50))))  # 50 at once over 2
        assert len(pool._in_use_connections) + len(pool._available_connections) <= 2
        held = [await pool.get_connection() for _ in range(2)]
        pool._wait = 0.3  # type: ignore[attr-defined]
        started = time.monotonic()
        with pytest.raises(RedisConnectionError, match="came free"):
            await client.ping()
        assert time.monotonic() - started >= 0.25
        pool._wait = 5  # type: ignore[attr-defined]
        waiting = asyncio.ensure_future(client.ping())

        async def queued() -> bool:
            return bool(pool._waiters)  # type: ignore[attr-defined]

        await eventually(queued, timeout=5, interval=0.01, what="the command waiting")
        await pool.release(held.pop())  # one comes free: the waiting command takes it, woken by the release
        # Woken by the release itself, not found later by the pool's 1 s look-again:
        # the release handed the turn on before returning.
        assert not pool._waiters  # type: ignore[attr-defined]
        assert await asyncio.wait_for(waiting, 5)
        await pool.release(held.pop())
    finally:
        await client.aclose()


async def test_streams_opened_at_once_share_one_subscriber_connection() -> None:
    # Each stream asks the change feed to listen; the first makes the subscriber's
    # connection. Without one subscribe at a time, the opens that came meanwhile each
    # made another, never given back: a burst of opens leaked the pool dry.
    client = Redis.from_pool(WaitingPool.from_url(SCRATCH, max_connections=5, wait=5))
    pool = client.connection_pool
    feed = ChangeFeed(client)
    try:
        queues = [asyncio.Queue[bytes]() for _ in range(50)]
        await asyncio.gather(*(feed.listen([f"n:burst:{i}".encode()], q) for i, q in enumerate(queues)))
        assert len(pool._in_use_connections) == 1, len(pool._in_use_connections)
        assert await client.ping()  # the rest of the pool still serves
    finally:
        await feed.close()
        await client.aclose()
