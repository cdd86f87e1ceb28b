"""The tweet cache: each tweet's timeline item, as the exact JSON bytes the API returns,
so a page is assembled by joining bytes, not by decoding and re-encoding tweets."""

from __future__ import annotations

import uuid

import msgspec
from redis.asyncio import Redis, RedisCluster

from shared_schemas.internal_api import TweetItem
from timeline.adapters import redis_client

_encoder = msgspec.json.Encoder()
_decoder = msgspec.json.Decoder(TweetItem)


KEY_PREFIX = b"tw:"  # + the tweet's 16-byte id; the page script reads these keys too


def _key(tweet_id: uuid.UUID | bytes) -> bytes:
    raw = tweet_id.bytes if isinstance(tweet_id, uuid.UUID) else tweet_id
    return KEY_PREFIX + raw


class TweetCache:
    def __init__(self, redis: Redis | RedisCluster, ttl_seconds: int) -> None:
        self.redis, self.ttl = redis, ttl_seconds
        # One call for many items on a single Redis; on a cluster their keys share no slot.
        self._put = (
            None
            if isinstance(redis, RedisCluster)
            else redis.register_script(redis_client.script_source("cache_put.lua"))
        )

    async def put_many(self, items: list[TweetItem]) -> None:
        if not items:
            return
        if self._put is not None and len(items) > 1:
            await self._put(
                keys=[_key(item.tweet_id) for item in items],
                args=[self.ttl, *(_encoder.encode(item) for item in items)],
            )
            return
        async with self.redis.pipeline(transaction=False) as pipe:
            for item in items:
                pipe.set(_key(item.tweet_id), _encoder.encode(item), ex=self.ttl)
            await pipe.execute()

    async def get_many(self, tweet_ids: list[bytes]) -> list[bytes | None]:
        """One MGET: a page costs one round trip however many tweets it holds."""
        if not tweet_ids:
            return []
        return await redis_client.mget(self.redis, [_key(t) for t in tweet_ids])

    async def delete(self, tweet_id: uuid.UUID) -> None:
        await self.redis.delete(_key(tweet_id))

    @staticmethod
    def decode(raw: bytes) -> TweetItem:
        return _decoder.decode(raw)

    @staticmethod
    def encode(item: TweetItem) -> bytes:
        return _encoder.encode(item)
