"""The composition root: builds the stores, clients and services from settings."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis, RedisCluster

from timeline.adapters import redis_client, tweet_cache
from timeline.adapters.feed import Feed
from timeline.adapters.tweet_cache import TweetCache
from timeline.adapters.users_client import UsersClient
from timeline.services.fanout import Fanout
from timeline.services.reader import Reader
from timeline.settings import Settings


@dataclass
class Components:
    redis: Redis | RedisCluster
    users: UsersClient
    feed: Feed
    cache: TweetCache
    fanout: Fanout
    reader: Reader

    async def close(self) -> None:
        await self.users.close()
        await self.redis.aclose()


def build(settings: Settings) -> Components:
    redis = redis_client.connect(
        settings.redis_url, settings.redis_cluster, settings.redis_connect_timeout, settings.redis_timeout
    )
    users = UsersClient(settings.users_api_url, settings.users_api_connect_timeout, settings.users_api_timeout)
    feed = Feed(redis, settings.max_items, settings.ttl_seconds, items_prefix=tweet_cache.KEY_PREFIX)
    cache = TweetCache(redis, settings.tweet_cache_ttl_seconds)
    fanout = Fanout(feed, cache, users, settings.celebrity_threshold, settings.backfill_items, settings.fanout_batch)
    return Components(redis, users, feed, cache, fanout, Reader(feed, cache, users, fanout))
