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
from collections.abc import Callable
from typing import NamedTuple, cast

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import NoScriptError

from timeline.adapters.redis_client import script_source


class Slice(NamedTuple):  # a NamedTuple: built on every read, and cheaper than a dataclass
    materialized: bool
    # The slice came up short at the list's cap: older tweets exist that the list no
    # longer holds (the end of the cached window, not the end of the timeline).
    truncated: bool
    ids: list[bytes]
    celebrities: list[uuid.UUID]
    # What a home's read brought along on a single Redis (page.lua), else None: each
    # followed celebrity's slice, in the order of `celebrities`; the newest distinct
    # ids of all the slices, which the page is a prefix of, and their cached items
    # (None where not cached).
    celebrity_slices: list[Slice] | None = None
    prefetched: tuple[list[bytes], list[bytes | None]] | None = None


def _home(user: uuid.UUID) -> tuple[str, str, str]:
    tag = "{" + user.hex + "}"
    return f"tlm:{tag}", f"tl:{tag}", f"fc:{tag}"


def _celebrity(author: uuid.UUID) -> tuple[str, str]:
    # page.lua builds these two names too (from a followed celebrity's id)
    tag = "{" + author.hex + "}"
    return f"clm:{tag}", f"cl:{tag}"


CELEBRITIES = "celebs"
# Homes per push script call on a single Redis: a call takes ~20 µs a home, so 100 hold
# the server for about 2 ms at most.
PUSH_HOMES = 100


def _newest_first(tweet_ids: list[uuid.UUID]) -> list[bytes]:
    """Ids as push.lua takes them best: in that order, many are merged in one pass."""
    return sorted({t.bytes for t in tweet_ids}, reverse=True)


def _evalsha(pipe, sha: str, keys: list, args: list) -> None:
    # Through execute_command: redis-py's cluster pipeline blocks its evalsha() method
    # because it cannot reload a missing script mid-pipeline; Feed._pipelined does that
    # itself (reload, then run the idempotent pipeline again). The cluster client still
    # routes the command by its keys.
    pipe.execute_command("EVALSHA", sha, len(keys), *keys, *args)


class Feed:
    def __init__(
        self, redis: Redis | RedisCluster, max_items: int, ttl_seconds: int, items_prefix: bytes = b""
    ) -> None:
        """`items_prefix`: the tweet cache's key prefix, to read a page's items (or its
        celebrities' lists) in the page script's round trip; ignored on a cluster,
        where those keys live on other nodes."""
        self.redis, self.max_items, self.ttl = redis, max_items, ttl_seconds
        self.items_prefix = b"" if isinstance(redis, RedisCluster) else items_prefix
        self._push = redis.register_script(script_source("push.lua"))
        self._page = redis.register_script(script_source("page.lua"))

    async def _pipelined(self, queue: Callable, *, transaction: bool = False) -> list:
        """Run the commands `queue(pipe)` adds, in one round trip (per node on a cluster).

        Scripts go in as EVALSHA; a server that lacks them (restarted, flushed, a new
        cluster node) answers NOSCRIPT, and the whole pipeline runs again after loading
        them: every command here is idempotent.
        """
        for attempt in (1, 2):
            async with self.redis.pipeline(transaction=transaction) as pipe:
                queue(pipe)
                try:
                    return await pipe.execute()
                except NoScriptError:
                    if attempt == 2:
                        raise
                    for script in (self._push, self._page):
                        await self.redis.script_load(script.script)  # every primary on a cluster
        return []

    def _by_slot(self, users: list[uuid.UUID]) -> list[list[str]]:
        """The (marker, home) keys of `users`, in groups that one script call may touch:
        all of them on a single Redis (in calls of at most PUSH_HOMES homes, so that no
        call holds the server for long), the homes of one slot on a cluster."""
        if not isinstance(self.redis, RedisCluster):
            keys = [key for user in users for key in _home(user)[:2]]
            step = 2 * PUSH_HOMES
            return [keys[i : i + step] for i in range(0, len(keys), step)]
        groups: dict[int, list[str]] = {}
        for user in users:
            marker, home, _ = _home(user)
            groups.setdefault(self.redis.keyslot(marker), []).extend((marker, home))
        return list(groups.values())

    # -- home timelines -------------------------------------------------------------
    async def push_to_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        """Fan-out: place the ids in each materialized home, one pipeline per call."""
        args = [self.max_items, "1", *_newest_first(tweet_ids)]

        def queue(pipe) -> None:
            for keys in self._by_slot(users):
                _evalsha(pipe, self._push.sha, keys, args)

        await self._pipelined(queue)

    async def unpush_from_homes(self, users: list[uuid.UUID], tweet_ids: list[uuid.UUID]) -> None:
        def queue(pipe) -> None:
            for user in users:
                for tweet_id in tweet_ids:
                    pipe.lrem(_home(user)[1], 0, tweet_id.bytes)

        await self._pipelined(queue)

    async def home_ids(self, user: uuid.UUID) -> list[bytes]:
        return cast(list[bytes], await self.redis.lrange(_home(user)[1], 0, -1))

    async def page_home(self, user: uuid.UUID, older_than: uuid.UUID | None, count: int) -> Slice:
        # The hot path of every read: EVALSHA straight through execute_command (what
        # AsyncScript.__call__ does, less a layer), loading the script on NOSCRIPT.
        args = (
            "EVALSHA",
            self._page.sha,
            3,
            *_home(user),
            older_than.bytes if older_than else b"",
            count,
            self.ttl,
            b"1",
            self.max_items,
            self.items_prefix,
        )
        try:
            materialized, truncated, ids, celebs, lists, page, items = await self.redis.execute_command(*args)
        except NoScriptError:
            await self.redis.script_load(self._page.script)
            materialized, truncated, ids, celebs, lists, page, items = await self.redis.execute_command(*args)
        celebrities = [uuid.UUID(bytes=c) for c in celebs] if celebs else []
        if not self.items_prefix:
            return Slice(materialized == 1, truncated == 1, ids, celebrities)
        slices = [Slice(m == 1, t == 1, theirs, []) for m, t, theirs in lists] if lists else []
        return Slice(materialized == 1, truncated == 1, ids, celebrities, slices, (page, items))

    async def begin_rebuild(self, user: uuid.UUID, celebrities: list[uuid.UUID]) -> None:
        """Start a home afresh: mark it materialized *before* its tweets are fetched, so
        a tweet fanned out while the fetch is in flight is pushed, not lost; clear what
        an earlier life of the home left behind."""
        marker, home, followed = _home(user)

        def queue(pipe) -> None:  # one slot (the user's hash tag): a transaction on a cluster too
            pipe.set(marker, b"1", ex=self.ttl)
            pipe.delete(home, followed)
            if celebrities:
                pipe.sadd(followed, *(c.bytes for c in celebrities))
                pipe.expire(followed, self.ttl)

        await self._pipelined(queue, transaction=True)

    async def abandon_rebuild(self, user: uuid.UUID) -> None:
        """A rebuild that failed half-way leaves no marker behind: the next read
        rebuilds the home instead of serving it incomplete."""
        await self.redis.delete(_home(user)[0])

    async def merge_into_home(self, user: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        """Place many ids at once (the merge is idempotent and keeps id order)."""
        if tweet_ids:
            marker, home, _ = _home(user)
            await self._push(keys=[marker, home], args=[self.max_items, "1", *_newest_first(tweet_ids)])

    async def is_materialized(self, user: uuid.UUID) -> bool:
        return bool(await self.redis.exists(_home(user)[0]))

    async def follow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        """Add `celebrity` to the merge set of each materialized home among `users`."""
        present = await self._pipelined(lambda pipe: [pipe.exists(_home(user)[0]) for user in users])
        readers = [user for user, exists in zip(users, present) if exists]

        def queue(pipe) -> None:
            for user in readers:
                pipe.sadd(_home(user)[2], celebrity.bytes)
                pipe.expire(_home(user)[2], self.ttl)

        if readers:
            await self._pipelined(queue)

    async def unfollow_celebrity(self, users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        await self._pipelined(lambda pipe: [pipe.srem(_home(user)[2], celebrity.bytes) for user in users])

    # -- celebrity lists ------------------------------------------------------------
    async def push_to_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID], *, fill: bool = False) -> None:
        """`fill=True` creates the list (and its marker); otherwise only a filled list
        is added to, so a list is never mistaken for complete when it is not."""
        marker, listing = _celebrity(author)
        if fill:
            await self.redis.set(marker, b"1")
        await self._push(keys=[marker, listing], args=[self.max_items, "1", *_newest_first(tweet_ids)])

    async def begin_celebrity_list(self, author: uuid.UUID) -> None:
        """Mark a celebrity's list filled *before* its tweets are fetched, as a home's
        rebuild does: a tweet that arrives while the fetch is in flight is then pushed,
        not skipped (the fetch may have read the database before it committed)."""
        await self.redis.set(_celebrity(author)[0], b"1")

    async def abandon_celebrity_list(self, author: uuid.UUID) -> None:
        await self.redis.delete(_celebrity(author)[0])

    async def unpush_from_celebrity(self, author: uuid.UUID, tweet_ids: list[uuid.UUID]) -> None:
        await self._pipelined(lambda pipe: [pipe.lrem(_celebrity(author)[1], 0, t.bytes) for t in tweet_ids])

    async def page_celebrities(self, authors: list[uuid.UUID], older_than: uuid.UUID | None, count: int) -> list[Slice]:
        cursor = older_than.bytes if older_than else b""

        def queue(pipe) -> None:
            for author in authors:
                marker, listing = _celebrity(author)
                # KEYS[3] is unused for a celebrity list; the marker stands in, same slot.
                _evalsha(
                    pipe, self._page.sha, [marker, listing, marker], [cursor, count, self.ttl, "0", self.max_items, ""]
                )

        results = await self._pipelined(queue)
        return [Slice(m == 1, t == 1, ids, []) for m, t, ids, *_ in results]

    async def celebrity_ids(self, author: uuid.UUID) -> list[bytes]:
        return cast(list[bytes], await self.redis.lrange(_celebrity(author)[1], 0, -1))

    async def mark_celebrity(self, author: uuid.UUID, is_celebrity: bool) -> bool:
        """Record the author's status; True when it changed (a threshold was crossed)."""
        if is_celebrity:
            return bool(await self.redis.sadd(CELEBRITIES, author.bytes))
        return bool(await self.redis.srem(CELEBRITIES, author.bytes))
