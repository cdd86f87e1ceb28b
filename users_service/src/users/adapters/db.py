"""One async engine per physical shard (and per read replica), and the shard routing."""

from __future__ import annotations

import uuid
from collections import defaultdict
from collections.abc import Iterable

from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from users.domain.sharding import ShardMap
from users.settings import Settings


class ShardedDatabase:
    def __init__(self, settings: Settings) -> None:
        self.map = ShardMap(len(settings.shard_dsns))
        self.primaries: list[AsyncEngine] = [self._engine(dsn, settings) for dsn in settings.shard_dsns]
        self.replicas: list[AsyncEngine] = [
            self.primaries[i] if settings.replica_for(i) == dsn else self._engine(settings.replica_for(i), settings)
            for i, dsn in enumerate(settings.shard_dsns)
        ]

    @staticmethod
    def _engine(dsn: str, settings: Settings) -> AsyncEngine:
        return create_async_engine(dsn, pool_size=settings.pool_size, max_overflow=settings.pool_size, pool_pre_ping=True)

    def primary_for_user(self, user_id: uuid.UUID) -> AsyncEngine:
        return self.primaries[self.map.for_user(user_id)]

    def replica_for_user(self, user_id: uuid.UUID) -> AsyncEngine:
        return self.replicas[self.map.for_user(user_id)]

    def group_users(self, user_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        """User ids grouped by physical shard: one query per shard, never one per id."""
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for user_id in dict.fromkeys(user_ids):
            groups[self.map.for_user(user_id)].append(user_id)
        return groups

    def group_tweets(self, tweet_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for tweet_id in dict.fromkeys(tweet_ids):
            groups[self.map.for_tweet(tweet_id)].append(tweet_id)
        return groups

    async def dispose(self) -> None:
        for engine in {*self.primaries, *self.replicas}:
            await engine.dispose()
