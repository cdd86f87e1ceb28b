"""The composition root: builds the store, the clients and the services from settings."""

from __future__ import annotations

from dataclasses import dataclass

from redis.asyncio import Redis, RedisCluster

from timeline.adapters.store import connection
from timeline.adapters.store.changes import ChangeFeed
from timeline.adapters.store.redis_store import RedisTimelineStore
from timeline.adapters.users_client import UsersClient
from timeline.services.celebrities import Celebrities
from timeline.services.fanout import Fanout
from timeline.services.live import LiveTimeline
from timeline.services.reader import Reader
from timeline.services.recent_readers import RecentReaders
from timeline.services.warmup import Warmup
from timeline.settings import Settings


@dataclass
class Components:
    redis: Redis | RedisCluster
    users: UsersClient
    store: RedisTimelineStore
    fanout: Fanout
    reader: Reader
    changes: ChangeFeed
    live: LiveTimeline
    warmup: Warmup

    async def close(self) -> None:
        await self.changes.close()
        await self.users.close()
        await self.redis.aclose()


def build(settings: Settings) -> Components:
    redis = connection.connect(
        settings.redis_url,
        settings.redis_cluster,
        settings.redis_connect_timeout,
        settings.redis_timeout,
        settings.redis_max_connections,
    )
    users = UsersClient(settings.users_api_url, settings.users_api_connect_timeout, settings.users_api_timeout)
    store = RedisTimelineStore(
        redis, settings.max_items, settings.ttl_seconds, settings.tweet_cache_ttl_seconds, settings.rebuild_seconds
    )
    celebrities = Celebrities(store, users, settings.celebrity_threshold, settings.fanout_batch)
    fanout = Fanout(store, users, celebrities, settings.backfill_items, settings.fanout_batch)
    recent = RecentReaders(settings.warm_readers)
    reader = Reader(
        store, users, celebrities, settings.unknown_user_ttl_seconds, recent=recent, grace=settings.stream_grace_seconds
    )
    warmup = Warmup(reader, store, recent, settings.warm_concurrency, settings.warm_check_seconds)
    changes = ChangeFeed(redis)
    live = LiveTimeline(
        reader,
        store,
        changes,
        settings.stream_keepalive_seconds,
        settings.streams_per_caller,
        settings.streams_per_process,
        settings.stream_settle_seconds,
        settings.stream_grace_seconds,
    )
    return Components(redis, users, store, fanout, reader, changes, live, warmup)
