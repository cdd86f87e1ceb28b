"""The one class that owns every Redis feed key (after Mastodon's FeedManager).

Keys, each with its user id as the hash tag so the keys of one script share a Redis
Cluster slot:
  tl:{user}   home timeline: list of 16-byte tweet ids, newest first, capped
  tlm:{user}  "home is materialized" marker; without it the home is rebuilt on read,
              and fan-out skips the user (no point filling a timeline nobody reads)
  fc:{user}   set of followed celebrities, merged in at read time
  cl:{author} a celebrity's recent tweet ids (kept once, not fanned out)
  clm:{author} "celebrity list is filled" marker
  celebs      authors currently treated as celebrities (to notice threshold crossings)
Entries are raw 16-byte ids, not 36-character strings: a list entry then costs about
18 bytes of Redis memory, which is what makes 800 ids per user affordable.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass
from importlib import resources

from redis.asyncio import Redis


def _script(name: str) -> str:
    return resources.files("timeline.adapters").joinpath(f"lua/{name}").read_text()


@dataclass(frozen=True)
class Slice:
    materialized: bool
    length: int  # of the whole list, to tell "end of the cached window" from "end"
    ids: list[bytes]
    celebrities: list[uuid.UUID]


def _home(user: uuid.UUID) -> tuple[str, str, str]:
    tag = "{" + user.hex + "}"
    return f"tlm:{tag}", f"tl:{tag}", f"fc:{tag}"


def _celebrity(author: uuid.UUID) -> tuple[str, str]:
    tag = "{" + author.hex + "}"
    return f"clm:{tag}", f"cl:{tag}"


CELEBRITIES = "celebs"


class Feed:
    def __init__(self, redis: Redis, max_items: int, ttl_seconds: int) -> None:
        self.redis, self.max_items, self.ttl = redis, max_items, ttl_seconds
        self._push = redis.register_script(_script("push.lua"))
        self._page = redis.register_script(_script("page.lua"))

    # -- home timelines -------------------------------------------------------------
    async def push_to_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        """Fan-out: place the ids in each materialized home, one pipeline per call."""
        args = [self.max_items, "1", *(t.bytes for t in tweet_ids)]
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                marker, home, _ = _home(user)
                await self._push(keys=[marker, home], args=args, client=pipe)
            await pipe.execute()

    async def unpush_from_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                for tweet_id in tweet_ids:
                    pipe.lrem(_home(user)[1], 0, tweet_id.bytes)
            await pipe.execute()

    async def home_ids(self, user: uuid.UUID) -> list[bytes]:
        return await self.redis.lrange(_home(user)[1], 0, -1)

    async def page_home(self, user: uuid.UUID, older_than: uuid.UUID | None, count: int) -> Slice:
        materialized, length, ids, celebs = await self._page(
            keys=list(_home(user)), args=[older_than.bytes if older_than else b"", count, self.ttl, "1"]
        )
        return Slice(bool(materialized), length, ids, [uuid.UUID(bytes=c) for c in celebs])

    async def begin_rebuild(self, user: uuid.UUID, celebrities: list[uuid.UUID]) -> None:
        """Start a home afresh: mark it materialized *before* its tweets are fetched, so
        a tweet fanned out while the fetch is in flight is pushed, not lost; clear what
        an earlier life of the home left behind."""
        marker, home, followed = _home(user)
        async with self.redis.pipeline(transaction=True) as pipe:
            pipe.set(marker, b"1", ex=self.ttl)
            pipe.delete(home, followed)
            if celebrities:
                pipe.sadd(followed, *(c.bytes for c in celebrities))
                pipe.expire(followed, self.ttl)
            await pipe.execute()

    async def merge_into_home(self, user: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        """Place many ids at once (the merge is idempotent and keeps id order)."""
        if tweet_ids:
            marker, home, _ = _home(user)
            await self._push(keys=[marker, home], args=[self.max_items, "1", *(t.bytes for t in tweet_ids)])

    async def is_materialized(self, user: uuid.UUID) -> bool:
        return bool(await self.redis.exists(_home(user)[0]))

    async def follow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        """Add `celebrity` to the merge set of each materialized home among `users`."""
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.exists(_home(user)[0])
            present = await pipe.execute()
            for user, exists in zip(users, present):
                if exists:
                    pipe.sadd(_home(user)[2], celebrity.bytes)
                    pipe.expire(_home(user)[2], self.ttl)
            await pipe.execute()

    async def unfollow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for user in users:
                pipe.srem(_home(user)[2], celebrity.bytes)
            await pipe.execute()

    # -- celebrity lists ------------------------------------------------------------
    async def push_to_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID], *, fill: bool = False) -> None:
        """`fill=True` creates the list (and its marker); otherwise only a filled list
        is added to, so a list is never mistaken for complete when it is not."""
        marker, listing = _celebrity(author)
        if fill:
            await self.redis.set(marker, b"1")
        await self._push(keys=[marker, listing], args=[self.max_items, "1", *(t.bytes for t in tweet_ids)])

    async def unpush_from_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        async with self.redis.pipeline(transaction=False) as pipe:
            for tweet_id in tweet_ids:
                pipe.lrem(_celebrity(author)[1], 0, tweet_id.bytes)
            await pipe.execute()

    async def page_celebrities(self, authors: list[uuid.UUID], older_than: uuid.UUID | None, count: int) -> list[Slice]:
        cursor = older_than.bytes if older_than else b""
        async with self.redis.pipeline(transaction=False) as pipe:
            for author in authors:
                marker, listing = _celebrity(author)
                await self._page(keys=[marker, listing, marker], args=[cursor, count, self.ttl, "0"], client=pipe)
            results = await pipe.execute()
        return [Slice(bool(m), n, ids, []) for m, n, ids, _ in results]

    async def celebrity_ids(self, author: uuid.UUID) -> list[bytes]:
        return await self.redis.lrange(_celebrity(author)[1], 0, -1)

    async def mark_celebrity(self, author: uuid.UUID, is_celebrity: bool) -> bool:
        """Record the author's status; True when it changed (a threshold was crossed)."""
        if is_celebrity:
            return bool(await self.redis.sadd(CELEBRITIES, author.bytes))
        return bool(await self.redis.srem(CELEBRITIES, author.bytes))
