"""The bulk path must build what the real one would: a few bulk-built homes are saved,
deleted, rebuilt by the Timeline Service's own Reader.rebuild from the rows in
PostgreSQL (through the Users Service's internal API), and compared; a few cached
tweets are compared with the items the Users Service returns for them; and the pull
model's first page must equal the service's, byte for byte."""

from __future__ import annotations

import uuid

import numpy as np
from redis.asyncio import Redis

from bench.config import Config
from bench.graph import Graph
from bench.progress import say
from timeline import bootstrap
from timeline import settings as timeline_settings
from timeline.adapters.store import keys as store_keys
from timeline.adapters.store.keys import item as tweet_key
from timeline.domain import items as item_codec


async def homes_match_rebuild(cfg: Config, graph: Graph, users: list[int]) -> int:
    parts = bootstrap.build(timeline_settings.load())
    redis: Redis = parts.redis
    try:
        for u in users:
            user = graph.user_ids[u]
            marker, home, followed = store_keys.home(user)
            bulk = (await redis.lrange(home, 0, -1), set(await redis.smembers(followed)), await redis.exists(marker))
            assert await redis.ttl(home) > 0 and await redis.ttl(marker) > 0, f"home of {user} has no TTL"
            await redis.delete(marker, home, followed)
            await parts.reader.rebuild(user)
            rebuilt = (await redis.lrange(home, 0, -1), set(await redis.smembers(followed)), await redis.exists(marker))
            if bulk != rebuilt:
                raise AssertionError(
                    f"bulk-built home of {user} differs from Reader.rebuild: {len(bulk[0])} vs {len(rebuilt[0])} ids, "
                    f"{len(bulk[1])} vs {len(rebuilt[1])} celebrities"
                )
        sample = (
            np.linspace(0, graph.tweets - 1, num=min(50, graph.tweets), dtype=np.int64).tolist() if graph.tweets else []
        )
        ids = [graph.tweet_ids[t] for t in sample]
        items = await parts.users.tweets_by_ids(ids)
        cached = await redis.mget([tweet_key(i) for i in ids])
        by_id = {item.tweet_id: item_codec.encode(item) for item in items}
        for tweet_id, raw in zip(ids, cached):
            if raw != by_id.get(tweet_id):
                raise AssertionError(f"cached tweet {tweet_id} differs from the Users Service's item")
    finally:
        await parts.close()
    say(f"check: {len(users)} bulk-built homes equal Reader.rebuild's, {len(ids)} cached tweets equal the source")
    return len(users)


def pick(graph: Graph, count: int, rng: np.random.Generator) -> list[int]:
    """Users of both kinds (with and without celebrities among those they follow)."""
    has = graph.follows_celebrity()
    ordinary = ~graph.fans  # a fan follows celebrities only: an empty home, no list to compare
    chosen: list[int] = []
    for pool in (np.nonzero(has & ordinary)[0], np.nonzero(~has & ordinary)[0]):
        if len(pool):
            chosen += rng.choice(pool, size=min(count, len(pool)), replace=False).tolist()
    return chosen


def same_pages(a: list[bytes], b: list[bytes], what: str) -> None:
    for x, y in zip(a, b):
        if x != y:
            raise AssertionError(f"{what}: pages differ:\n{x[:300]!r}\n{y[:300]!r}")


def uuid_str(graph: Graph, u: int) -> str:
    return str(graph.user_ids[u])


__all__ = ["homes_match_rebuild", "pick", "same_pages", "uuid", "uuid_str"]
