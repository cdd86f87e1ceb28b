"""The stores broken mid-stream: the broker, Redis and PostgreSQL killed and started
again, Redis flushed. Every tweet that got 201 reaches every follower once, in order."""

from __future__ import annotations

import asyncio
import os
import time

import pytest
from redis.asyncio import Redis

from tests.faults.cases import run_case
from tests.faults.harness import REDIS_URL, WORKER_METRICS, Group, astack, metric
from tests.support import eventually


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


async def test_one_broker_of_three_killed_and_started_again(group: Group) -> None:
    if int(os.environ.get("KAFKA_BROKERS", "1")) < 3:
        pytest.skip("needs the test stack's cluster of three brokers (KAFKA_BROKERS=3)")

    async def fault() -> None:
        await astack("kill", "kafka-2")  # a leader of some partitions, a controller voter
        # Not just nothing lost: delivery goes on while it is down. Each author posts
        # once more; every follower gets those before the broker is back (with one
        # replica, the partitions it led would wait for it).
        marks = {a: await group.post(a, "posted while a broker is down") for a in [*group.authors, group.celebrity]}
        started = time.monotonic()
        await eventually(lambda: group.delivered(marks), timeout=45, what="delivery while a broker is down")
        print(f"[faults] with a broker down, new tweets delivered in {time.monotonic() - started:.1f}s")
        await astack("up")

    await run_case(group, "one broker of three killed and started again", fault)
    assert group.server_errors == 0, "a request got a 5xx while a broker was down"


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


async def test_the_consumer_lag_counts_the_tweets_waiting_while_redis_is_down(group: Group) -> None:
    # What operators watch in an outage. A partition retrying an event is paused, its
    # fetches stop, and aiokafka's news of its end with them: the lag read flat, and
    # left out the batch in hand (seen as 0 with every tweet of the outage waiting).
    lag = "timeline_consumer_lag"
    posted = []
    await astack("kill", "redis")
    try:
        for i in range(12):
            posted.append(await group.post(group.authors[i % len(group.authors)], f"while Redis is down {i}"))
        await eventually(lambda: _at_least(lag, len(posted)), timeout=30, what=f"a lag of {len(posted)} tweets or more")
    finally:
        await astack("start-infra")
    await group.materialize()
    await group.converge("Redis down, the lag watched", since=time.monotonic())
    await eventually(lambda: _at_most(lag, 0), timeout=30, what="the lag back at 0")


async def _at_least(series: str, floor: float) -> bool:
    return await asyncio.to_thread(metric, WORKER_METRICS, series) >= floor


async def _at_most(series: str, ceiling: float) -> bool:
    return await asyncio.to_thread(metric, WORKER_METRICS, series) <= ceiling
