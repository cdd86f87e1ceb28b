"""The stores broken mid-stream: the broker, Redis and PostgreSQL killed and started
again, Redis flushed. Every tweet that got 201 reaches every follower once, in order."""

from __future__ import annotations

import asyncio
import time

from redis.asyncio import Redis

from tests.faults.cases import run_case
from tests.faults.harness import REDIS_URL, Group, astack


async def test_the_broker_killed_and_started_again(group: Group) -> None:
    async def fault() -> None:
        await astack("kill", "kafka")
        await asyncio.sleep(3)  # the clients keep retrying the closed port meanwhile
        started = time.monotonic()
        await astack("up")  # what `make run` does: starts whatever is not running
        took = time.monotonic() - started
        print(f"[faults] the broker was back {took:.1f}s after the stack was started again")
        assert took < 60, f"the broker took {took:.0f}s to come back"

    await run_case(group, "the broker killed and started again", fault)


async def test_redis_flushed(group: Group) -> None:
    async def fault() -> None:
        redis = Redis.from_url(REDIS_URL)
        try:
            await redis.flushall()
            # Nobody reads: the API processes remember who was reading and rebuild
            # those homes themselves (the warm-up, docs/decisions/0018).
            await group.warmed(redis)
        finally:
            await redis.aclose()

    await run_case(group, "Redis flushed", fault, redis_lost=True)


async def test_redis_killed_and_started_again_empty(group: Group) -> None:
    async def fault() -> None:
        await astack("kill", "redis")
        await asyncio.sleep(3)
        await astack("start-infra")
        await group.materialize()

    await run_case(group, "Redis killed and restarted", fault, redis_lost=True)


async def test_postgres_killed_and_started_again(group: Group) -> None:
    async def fault() -> None:
        await astack("kill", "postgres")
        await asyncio.sleep(3)  # POSTs fail meanwhile; the careful client retries them
        await astack("start-infra")

    await run_case(group, "PostgreSQL killed and restarted", fault)
