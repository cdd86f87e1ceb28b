"""Reads for the Timeline Service (the internal API), served from read replicas.

Each call makes one query per physical shard involved, run concurrently, never one
query per id.

Nearly every one of them must see the writes that came before it: the followers a
tweet's fan-out walks include a follow committed before the tweet; a rebuild, a
backfill and a hydration include every tweet already fanned out. So they read "fresh":
on a replica only once it has replayed all its primary had committed when the read
began, else on the primary; and only from a database that still holds the shards read
(a process on an old map is told, reads the map again and reads again:
ShardedDatabase.raw_fresh, docs/decisions/0020).
"""

from __future__ import annotations

import asyncio
import heapq
import logging
import uuid
from collections.abc import Callable
from typing import NamedTuple

from users.adapters import follows_repo, homes_repo, tweets_repo, users_repo
from users.adapters.db import ShardedDatabase
from users.domain.model import Tweet, User
from users.domain.sharding import tweet_logical_shard, user_logical_shard
from users.services.accounts import get_user
from users.services.routing import follows_moves

log = logging.getLogger("users.graph_reads")


@follows_moves
async def followers_page(
    db: ShardedDatabase, user_id: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    async with db.raw_fresh(db.map.for_user(user_id), [user_logical_shard(user_id)]) as conn:
        return await follows_repo.followers_page(conn, user_id, after, limit)


async def first_follower_pages(
    db: ShardedDatabase, user_ids: list[uuid.UUID], limit: int
) -> list[list[uuid.UUID] | None]:
    """The first `limit` followers of each user, by id: the fan-outs of several tweets
    in one call (docs/decisions/0021), one query per database. None for the users of a
    database that could not be read, or that a move left since this process read the
    map (it reads the map again within USERS_SHARD_MAP_REFRESH_SECONDS, and the worker
    asks again): the others' fan-outs go on meanwhile."""

    async def one_database(index: int, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        async with db.raw_fresh(index, {user_logical_shard(i) for i in ids}) as conn:
            return await follows_repo.first_pages(conn, ids, limit)

    groups = db.group_users(user_ids)
    parts = await asyncio.gather(*(one_database(i, ids) for i, ids in groups.items()), return_exceptions=True)
    found: dict[uuid.UUID, list[uuid.UUID]] = {}
    for index, part in zip(groups, parts, strict=True):
        if isinstance(part, BaseException):
            if not isinstance(part, Exception):
                raise part  # cancelled
            log.warning("followers not read", extra={"database": index, "error": repr(part)})
            continue
        found.update(part)
    return [found.get(user) for user in user_ids]


@follows_moves
async def following(db: ShardedDatabase, user_id: uuid.UUID) -> tuple[User, list[User]]:
    """The user and everyone they follow, each with counts (the timeline needs the
    followers counts to tell celebrities apart)."""
    user = await get_user(db, user_id)
    async with db.fresh(db.map.for_user(user_id), [user_logical_shard(user_id)]) as conn:
        ids = await follows_repo.followees(conn, user_id)
    return user, await users_by_ids(db, ids)


async def _per_shard(
    db: ShardedDatabase, groups: dict[int, list[uuid.UUID]], read: Callable, logical: Callable[[uuid.UUID], int]
) -> list[list]:
    """`read(conn, ids)` on each database, concurrently: one query per database, fresh
    (ids routed by `logical`, the shard each id names)."""

    async def one_shard(index: int, ids: list[uuid.UUID]) -> list:
        async with db.fresh(index, {logical(i) for i in ids}) as conn:
            return await read(conn, ids)

    return await asyncio.gather(*(one_shard(i, ids) for i, ids in groups.items()))


async def users_by_ids(db: ShardedDatabase, user_ids: list[uuid.UUID]) -> list[User]:
    parts = await _per_shard(db, db.group_users(user_ids), users_repo.get_users, user_logical_shard)
    return [user for part in parts for user in part]


@follows_moves
async def recent_tweets(
    db: ShardedDatabase,
    author_ids: list[uuid.UUID],
    before: uuid.UUID | None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Tweet]:
    """The newest `limit` tweets of these authors older than `before`, or, given
    `after`, the oldest `limit` newer than it (a refresh); newest first either way."""
    parts = await _per_shard(
        db,
        db.group_users(author_ids),
        lambda conn, ids: tweets_repo.recent_by_authors(conn, ids, before, limit, after),
        user_logical_shard,
    )
    merged = list(heapq.merge(*parts, key=lambda t: t.tweet_id, reverse=True))
    return merged[-limit:] if after is not None else merged[:limit]


@follows_moves
async def tweets_by_ids(db: ShardedDatabase, tweet_ids: list[uuid.UUID]) -> list[Tweet]:
    """Existing, undeleted tweets among `tweet_ids` (routed by the shard each id carries)."""
    parts = await _per_shard(db, db.group_tweets(tweet_ids), tweets_repo.by_ids, tweet_logical_shard)
    return [tweet for part in parts for tweet in part]


class HomeSource(NamedTuple):
    celebrities: list[uuid.UUID]
    tweet_ids: bytes  # 16-byte ids, newest first
    tweets: list[Tweet]  # the newest `items` of them, whole


class HomeAsk(NamedTuple):
    user_id: uuid.UUID
    items: int  # how many of the newest to return whole


@follows_moves
async def home_sources(db: ShardedDatabase, asks: list[HomeAsk], limit: int, threshold: int) -> list[HomeSource | None]:
    """What lost homes are rebuilt from (None: no such user), for the rebuilds that
    waited together (docs/decisions/0021): for each, whom the caller follows split into
    celebrities and the rest, the newest `limit` ids of the caller and the rest, and the
    newest `items` of those whole. Two rounds: the callers' databases, then every
    database at once, one statement each whatever the number of homes; raw asyncpg
    throughout (docs/decisions/0018)."""
    items: dict[uuid.UUID, int] = {}
    for ask in asks:  # a user asked twice: the larger
        items[ask.user_id] = max(ask.items, items.get(ask.user_id, 0))

    async def callers_on(index: int, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        async with db.raw_fresh(index, {user_logical_shard(i) for i in ids}) as conn:
            return await homes_repo.followees(conn, ids)

    parts = await asyncio.gather(*(callers_on(i, ids) for i, ids in db.group_users(list(items)).items()))
    followed = {user: authors for part in parts for user, authors in part.items()}
    # Per database, the homes that follow someone there (the caller counts: own tweets).
    wanted: dict[int, list[tuple[uuid.UUID, list[uuid.UUID]]]] = {}
    for user, authors in followed.items():
        for index, here in db.group_users([user, *authors]).items():
            wanted.setdefault(index, []).append((user, here))
    found = await asyncio.gather(
        *(_newest(db, index, homes, limit, threshold, items) for index, homes in wanted.items())
    )
    runs: dict[uuid.UUID, list[tuple[list[uuid.UUID], bytes]]] = {}
    tweets: dict[uuid.UUID, Tweet] = {}
    for (_, homes), (parts_here, whole) in zip(wanted.items(), found, strict=True):
        for (user, _), part in zip(homes, parts_here, strict=True):
            runs.setdefault(user, []).append(part)
        tweets.update((t.tweet_id, t) for t in whole)
    return [
        _source(runs.get(ask.user_id, []), tweets, limit, ask.items) if ask.user_id in followed else None
        for ask in asks
    ]


async def _newest(
    db: ShardedDatabase,
    index: int,
    homes: list[tuple[uuid.UUID, list[uuid.UUID]]],
    limit: int,
    threshold: int,
    items: dict[uuid.UUID, int],
) -> tuple[list[tuple[list[uuid.UUID], bytes]], list[Tweet]]:
    """On one database: each home's celebrities and run of newest ids there, and the
    newest few of each run whole (a home's newest `items` are among its runs' newest
    `items`)."""
    async with db.raw_fresh(index, {user_logical_shard(a) for _, authors in homes for a in authors}) as conn:
        parts = await homes_repo.newest_ids(conn, homes, limit, threshold)
        top = {
            run[i : i + 16]
            for (user, _), (_, run) in zip(homes, parts, strict=True)
            for i in range(0, min(len(run), 16 * items[user]), 16)
        }
        whole = await tweets_repo.items_by_ids(conn, [uuid.UUID(bytes=b) for b in top]) if top else []
    return parts, whole


def _source(
    parts: list[tuple[list[uuid.UUID], bytes]], tweets: dict[uuid.UUID, Tweet], limit: int, items: int
) -> HomeSource:
    """One home from its databases' parts: their runs merged, the newest `items` whole."""
    celebrities = [c for found, _ in parts for c in found]
    runs = [run for _, run in parts if run]
    if len(runs) == 1:
        newest = runs[0]
    else:  # each run is in order: one sort of their 16-byte ids finds the runs and merges them, in C
        chunks = sorted([run[i : i + 16] for run in runs for i in range(0, len(run), 16)], reverse=True)
        newest = b"".join(chunks[:limit])
    top = (uuid.UUID(bytes=newest[i : i + 16]) for i in range(0, min(len(newest), 16 * items), 16))
    return HomeSource(celebrities, newest, [tweets[t] for t in top if t in tweets])
