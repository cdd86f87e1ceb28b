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
from collections.abc import Callable, Iterator
from typing import NamedTuple

from shared_schemas.internal_api import ids_of
from users.adapters import follows_repo, homes_repo, tweets_repo, users_repo
from users.adapters.db import FreshAnswers, ShardedDatabase
from users.domain.errors import ShardMoved
from users.domain.model import Tweet, User
from users.domain.sharding import raw_tweet_logical_shard, tweet_logical_shard, user_logical_shard
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


@follows_moves
async def newest_each(db: ShardedDatabase, author_ids: list[uuid.UUID], limit: int) -> list[list[Tweet] | None]:
    """Each author's newest `limit` tweets, newest first, in the order asked: the fills
    of celebrity lists that waited together. One statement a database, raw asyncpg.
    None for the authors of a database that could not be read: the others' fills go
    on (theirs fail, as each would alone)."""
    answers: FreshAnswers = {}

    async def on(index: int, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[Tweet]]:
        async with db.raw_fresh(index, {user_logical_shard(i) for i in ids}, answers) as conn:
            return await homes_repo.newest_each(conn, ids, limit)

    groups = db.group_users(author_ids)
    parts = await asyncio.gather(*(on(index, ids) for index, ids in groups.items()), return_exceptions=True)
    found: dict[uuid.UUID, list[Tweet] | None] = {}
    for (index, ids), part in zip(groups.items(), parts, strict=True):
        if isinstance(part, ShardMoved) or not isinstance(part, Exception | dict):
            raise part  # a move (read again on the new map, above), or cancelled
        if isinstance(part, Exception):
            log.warning("tweets not read", extra={"database": index, "error": repr(part)})
            found.update(dict.fromkeys(ids))
            continue
        found.update({author: part.get(author, []) for author in ids})
    return [found[author] for author in author_ids]


class HomeSource(NamedTuple):
    celebrities: list[uuid.UUID]
    tweet_ids: bytes  # 16-byte ids, newest first
    tweets: list[Tweet]  # the newest `items` of them, whole


# The most authors one statement walks: a group of homes that follow thousands each is
# read in several statements, each well inside the statement timeout, not in one that
# fails them all.
MAX_AUTHORS_A_STATEMENT = 20_000


class HomeAsk(NamedTuple):
    user_id: uuid.UUID
    items: int  # how many of the newest to return whole


@follows_moves
async def home_sources(db: ShardedDatabase, asks: list[HomeAsk], limit: int, threshold: int) -> list[HomeSource | None]:
    """What lost homes are rebuilt from (None: no such user), for the rebuilds that
    waited together (docs/decisions/0021): for each, whom the caller follows split into
    celebrities and the rest, the newest `limit` ids of the caller and the rest, and the
    newest `items` of those whole. Three rounds, one statement per database each
    whatever the number of homes: the callers' followees, every home's newest ids, the
    newest items of every home; raw asyncpg throughout (docs/decisions/0018)."""
    answers: FreshAnswers = {}  # each database's primary asked once for the three rounds (0020)
    items: dict[uuid.UUID, int] = {}
    for ask in asks:  # a user asked twice: the larger
        items[ask.user_id] = max(ask.items, items.get(ask.user_id, 0))

    async def callers_on(index: int, ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
        async with db.raw_fresh(index, {user_logical_shard(i) for i in ids}, answers) as conn:
            return await homes_repo.followees(conn, ids)

    parts = await asyncio.gather(*(callers_on(i, ids) for i, ids in db.group_users(list(items)).items()))
    followed = {user: authors for part in parts for user, authors in part.items()}
    # Per database, the homes that follow someone there (the caller counts: own tweets),
    # and the logical shards their authors live in.
    wanted: dict[int, list[tuple[uuid.UUID, list[uuid.UUID]]]] = {}
    shards: dict[int, set[int]] = {}
    for user, authors in followed.items():
        for index, (here, logicals) in db.group_users_and_shards([user, *authors]).items():
            wanted.setdefault(index, []).append((user, here))
            shards.setdefault(index, set()).update(logicals)

    async def newest_on(index: int, homes: list[tuple[uuid.UUID, list[uuid.UUID]]]) -> list:
        runs = list(_by_authors(homes, MAX_AUTHORS_A_STATEMENT))
        async with db.raw_fresh(index, shards[index], answers) as conn:
            if len(runs) == 1:
                return await homes_repo.newest_ids(conn, runs[0], limit, threshold)
            # Several statements read as one: the first one's snapshot, taken while the
            # fence answer was trusted, not a later one's (a move's source may have
            # deleted what it handed over by then).
            async with conn.transaction(isolation="repeatable_read", readonly=True):
                return [part for some in runs for part in await homes_repo.newest_ids(conn, some, limit, threshold)]

    found = await asyncio.gather(*(newest_on(index, homes) for index, homes in wanted.items()))
    runs: dict[uuid.UUID, list[tuple[int, list[uuid.UUID], bytes]]] = {}
    for (index, homes), parts_here in zip(wanted.items(), found, strict=True):
        for (user, _), (celebrities, run) in zip(homes, parts_here, strict=True):
            runs.setdefault(user, []).append((index, celebrities, run))
    merged = {user: _merged([run for _, _, run in pieces], limit) for user, pieces in runs.items()}

    # Each home's newest `items`, asked of the database whose run holds each one.
    whole_from: dict[int, set[bytes]] = {}
    for user, pieces in runs.items():
        count = items[user]
        top = ids_of(merged[user], count)
        for where, _, run in pieces:
            held = set(ids_of(run, count))
            whole_from.setdefault(where, set()).update(t for t in top if t in held)

    async def whole_on(index: int, ids: set[bytes]) -> list[Tweet]:
        async with db.raw_fresh(index, {raw_tweet_logical_shard(t) for t in ids}, answers) as conn:
            return await homes_repo.items(conn, b"".join(ids))

    wholes = await asyncio.gather(*(whole_on(index, ids) for index, ids in whole_from.items() if ids))
    tweets = {t.tweet_id.bytes: t for part in wholes for t in part}
    return [
        _source(runs.get(ask.user_id, []), merged, tweets, ask) if ask.user_id in followed else None for ask in asks
    ]


def _by_authors(
    homes: list[tuple[uuid.UUID, list[uuid.UUID]]], most: int
) -> Iterator[list[tuple[uuid.UUID, list[uuid.UUID]]]]:
    """The homes in order, in runs of at most `most` authors (a home alone may exceed it)."""
    some: list[tuple[uuid.UUID, list[uuid.UUID]]] = []
    count = 0
    for home in homes:
        if some and count + len(home[1]) > most:
            yield some
            some, count = [], 0
        some.append(home)
        count += len(home[1])
    if some:
        yield some


def _merged(runs: list[bytes], limit: int) -> bytes:
    """Runs of 16-byte ids, each newest first, as one: the newest `limit`."""
    runs = [run for run in runs if run]
    if len(runs) <= 1:
        return runs[0] if runs else b""
    # Each run is in order: one sort of their ids finds the runs and merges them, in C.
    return b"".join(sorted([i for run in runs for i in ids_of(run)], reverse=True)[:limit])


def _source(
    parts: list[tuple[int, list[uuid.UUID], bytes]],
    merged: dict[uuid.UUID, bytes],
    tweets: dict[bytes, Tweet],
    ask: HomeAsk,
) -> HomeSource:
    """One home from its databases' parts: their celebrities, their runs merged, and
    the newest `ask.items` whole (a tweet deleted meanwhile is left out)."""
    newest = merged.get(ask.user_id, b"")
    top = ids_of(newest, ask.items)
    return HomeSource([c for _, found, _ in parts for c in found], newest, [tweets[t] for t in top if t in tweets])
