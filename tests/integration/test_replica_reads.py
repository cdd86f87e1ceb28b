"""The streaming replica (the test stack runs one: PG_REPLICA_PORT) serves the internal
reads, yet never makes them read the past: made to lag on purpose
(recovery_min_apply_delay), the fan-out still walks a follow committed just before a
tweet, and finds it on the primary (docs/decisions/0020)."""

from __future__ import annotations

import asyncio
import os
import uuid

import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.timeline_client import Client
from tests.faults.harness import MAX_ITEMS, REDIS_URL, metric
from tests.support import GATEWAY, USERS_API, eventually, stack
from timeline.adapters.store.redis_store import RedisTimelineStore

pytestmark = pytest.mark.skipif(os.environ.get("PG_REPLICA_PORT", "0") == "0", reason="no replica in this stack")


def _served_by(server: str) -> float:
    return metric([f"{USERS_API}/metrics"], f'users_fresh_reads_total{{served_by="{server}"}}')


async def _follow_then_tweet(http: httpx.AsyncClient) -> tuple[str, str]:
    """A follower whose home lives in Redis follows an author, who then tweets: the
    follower and the tweet's id."""
    client = Client(http)
    author, follower = await client.user(), await client.user()
    await client.ids(follower)  # the home is in Redis from now on: no rebuild hides a miss
    await client.follow(follower, author)

    async def counted() -> bool:  # the relay wrote "who follows the author" on the primary
        return (await http.get(f"/api/v1/users/{author}")).json()["followers_count"] == 1

    await eventually(counted, timeout=15, what="the follow's second half")
    return follower, await client.tweet(author, "after the follow")


async def _in_home(follower: str, tweet_id: str) -> bool:
    redis = Redis.from_url(REDIS_URL)
    try:
        feed = RedisTimelineStore(redis, MAX_ITEMS, ttl_seconds=3600, item_ttl_seconds=3600)
        return uuid.UUID(tweet_id).bytes in await feed.home_ids(uuid.UUID(follower))
    finally:
        await redis.aclose()


async def test_a_lagging_replica_never_hides_a_follow_from_the_fan_out() -> None:
    await asyncio.to_thread(stack, "replica-delay", "5s")
    try:
        async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
            primary_before = await asyncio.to_thread(_served_by, "primary")
            follower, tweet_id = await _follow_then_tweet(http)
            # Well before the replica applies the follow (5 s): read from it, the walk
            # would find no follower, and the tweet would never reach this home.
            await eventually(lambda: _in_home(follower, tweet_id), timeout=3, what="the tweet in the follower's home")
        assert await asyncio.to_thread(_served_by, "primary") > primary_before
    finally:
        await asyncio.to_thread(stack, "replica-delay", "0")


async def test_a_replica_that_keeps_up_serves_the_reads() -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        replica_before = await asyncio.to_thread(_served_by, "replica")
        follower, tweet_id = await _follow_then_tweet(http)
        await eventually(lambda: _in_home(follower, tweet_id), timeout=10, what="the tweet in the follower's home")
    assert await asyncio.to_thread(_served_by, "replica") > replica_before
