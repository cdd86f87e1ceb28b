"""The streaming replica (the test stack runs one: PG_REPLICA_PORT) serves the internal
reads, yet never makes them read the past: made to lag on purpose
(recovery_min_apply_delay), the fan-out still walks a follow committed just before a
tweet, and finds it on the primary (docs/decisions/0020)."""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid

import asyncpg
import httpx
import pytest
from redis.asyncio import Redis

from tests.e2e.timeline_client import Client
from tests.faults.harness import MAX_ITEMS, REDIS_URL, metric
from tests.integration.conftest import MAX_FOLLOWING
from tests.integration.databases import stars_on_two_databases
from tests.support import GATEWAY, USERS_API, eventually, stack, unique_name
from timeline.adapters.store.redis_store import RedisTimelineStore
from users.adapters import catalog
from users.adapters import db as db_module
from users.adapters.db import FRESH_READS, ShardedDatabase
from users.domain.sharding import user_logical_shard
from users.services import accounts, follows, graph_reads
from users.services import tweets as tweet_service
from users.settings import Settings as UsersSettings

pytestmark = pytest.mark.skipif(os.environ.get("PG_REPLICA_PORT", "0") == "0", reason="no replica in this stack")


def _served_by(server: str) -> float:
    return metric([f"{USERS_API}/metrics"], f'users_fresh_reads_total{{served_by="{server}"}}')


async def _follow_then_tweet(http: httpx.AsyncClient, replica_lags: bool, server: str) -> tuple[str, str, float]:
    """A follower whose home lives in Redis follows an author, who then tweets: the
    follower, the tweet's id, and the reads `server` had served just before it."""
    client = Client(http)
    author, follower = await client.user(), await client.user()
    await client.ids(follower)  # the home is in Redis from now on: no rebuild hides a miss
    first = await client.tweet(author, "before the follow")
    await client.follow(follower, author)
    # The follow's backfill brought the first tweet: the follow event is consumed, and
    # only the fan-out of the next tweet can bring that one.
    await eventually(lambda: _in_home(follower, first), timeout=15, what="the follow's backfill")
    if replica_lags:  # the primary has "who follows the author"; the replica does not yet
        assert await _followers_on("primary", author) == 1
        assert await _followers_on("replica", author) == 0, "the replica does not lag"
    before = await asyncio.to_thread(_served_by, server)
    return follower, await client.tweet(author, "after the follow"), before


async def _followers_on(server: str, author: str) -> int:
    """How many follow `author`, as the primary or the replica of its database has it."""
    layout = await catalog.read_dsn(os.environ["USERS_SHARD_DSNS"].split(",")[0])
    assert layout is not None
    db = layout.map.for_user(uuid.UUID(author))
    conn = await asyncpg.connect(catalog.plain_dsn(layout.dsns[db] if server == "primary" else layout.replicas[db]))
    try:
        return await conn.fetchval("SELECT count(*) FROM followers WHERE followee_id = $1", uuid.UUID(author))
    finally:
        await conn.close()


async def _in_home(follower: str, tweet_id: str) -> bool:
    redis = Redis.from_url(REDIS_URL)
    try:
        feed = RedisTimelineStore(redis, MAX_ITEMS, ttl_seconds=3600, item_ttl_seconds=3600)
        return uuid.UUID(tweet_id).bytes in await feed.home_ids(uuid.UUID(follower))
    finally:
        await redis.aclose()


async def _fan_out_served(server: str, *, replica_lags: bool, within: float) -> tuple[float, float]:
    """A follow, then a tweet that must reach the follower's home within `within` s:
    the reads `server` had served before the tweet, and after its fan-out."""
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        follower, tweet_id, before = await _follow_then_tweet(http, replica_lags, server)
        await eventually(lambda: _in_home(follower, tweet_id), timeout=within, what="the tweet in the follower's home")
    return before, await asyncio.to_thread(_served_by, server)


async def test_a_lagging_replica_never_hides_a_follow_from_the_fan_out() -> None:
    await asyncio.to_thread(stack, "replica-delay", "5s")
    try:
        # Well before the replica applies the follow (5 s): read from it, the walk
        # would find no follower, and the tweet would never reach this home.
        before, after = await _fan_out_served("primary", replica_lags=True, within=3)
        assert after > before
    finally:
        await asyncio.to_thread(stack, "replica-delay", "0")


async def test_a_replica_that_keeps_up_serves_the_reads() -> None:
    before, after = await _fan_out_served("replica", replica_lags=False, within=10)
    assert after > before


async def test_a_replica_that_is_gone_hands_its_reads_to_the_primary() -> None:
    await asyncio.to_thread(stack, "kill", "postgres-replica")
    try:
        before, after = await _fan_out_served("primary", replica_lags=False, within=10)
        assert after > before
    finally:
        await asyncio.to_thread(stack, "start-infra")


async def test_fresh_reads_at_once_share_one_question_to_the_primary_and_each_sees_its_write(db, monkeypatch) -> None:
    # That no read is answered with a position from before it asked is the coalescer's
    # rule (tests/unit/test_coalesce.py): a call never joins a group on its way. Here:
    # the reads share the question, and the fence check and the primary's fallback
    # (the replica made to lag) still give each its own write.
    asked = 0
    ask = db._ask_flushed

    async def counted(index: int, shards: list[list[int]]) -> list[tuple[int, frozenset[int]]]:
        nonlocal asked
        asked += 1
        return await ask(index, shards)

    monkeypatch.setattr(db, "_ask_flushed", counted)

    async def write_then_read() -> bool:
        user = await accounts.create_user(db, unique_name())
        index = db.map.for_user(user.user_id)
        async with db.raw_fresh(index, [user_logical_shard(user.user_id)]) as conn:
            return await conn.fetchval("SELECT username FROM users WHERE user_id = $1", user.user_id) == user.username

    await asyncio.to_thread(stack, "replica-delay", "2s")  # the replica has none of them: the primary answers
    try:
        seen = await asyncio.gather(*(write_then_read() for _ in range(30)))
    finally:
        await asyncio.to_thread(stack, "replica-delay", "0")
    assert all(seen)
    assert 0 < asked < len(seen), f"{asked} questions to the primary for {len(seen)} reads"


async def test_a_fresh_read_cancelled_while_its_replica_catches_up_gives_the_connection_back(db, monkeypatch) -> None:
    # The replica made to lag, a fresh read of a write it has not replayed waits on a
    # replica connection, asking every 2 ms (here for up to 5 s, so that it is still
    # waiting); cancelled then (a caller gone), the connection goes back to the pool at
    # once, not never.
    monkeypatch.setattr(db, "_settings", dataclasses.replace(db._settings, replica_max_wait=5.0))

    async def read(user) -> None:
        index = db.map.for_user(user.user_id)
        async with db.raw_fresh(index, [user_logical_shard(user.user_id)]) as conn:
            await conn.fetchval("SELECT 1")

    first = await accounts.create_user(db, unique_name())
    await read(first)  # the replica's pool is open
    pool = await db._raw_pools[db._replica_dsn(db.map.for_user(first.user_id))]
    await asyncio.to_thread(stack, "replica-delay", "3s")
    try:
        user = None
        while user is None or db.map.for_user(user.user_id) != db.map.for_user(first.user_id):
            user = await accounts.create_user(db, unique_name())  # on the same database
        task = asyncio.create_task(read(user))

        async def asking() -> bool:
            return pool.get_idle_size() < pool.get_size()

        await eventually(asking, timeout=2, interval=0.01, what="the read waiting on a replica connection")
        task.cancel()
        with pytest.raises(asyncio.CancelledError):
            await task
        assert pool.get_idle_size() == pool.get_size(), "the cancelled read kept its replica connection"
    finally:
        await asyncio.to_thread(stack, "replica-delay", "0")


async def test_a_replica_connection_that_had_caught_up_is_asked_again_for_a_later_write(monkeypatch) -> None:
    # A raw pool's connection remembers how far its replica had replayed, and a fresh
    # read that needs no more asks nothing. A write after that answer needs more: the
    # same connection, its replica now lagging, must be asked again, and the read goes
    # to the primary rather than miss the write. (And a read that needs no more is
    # served without a question, or this would test nothing.)
    db = ShardedDatabase(UsersSettings())  # pools of its own: one replica connection
    await db.refresh()

    async def sees(user) -> bool:
        async with db.raw_fresh(db.map.for_user(user.user_id), [user_logical_shard(user.user_id)]) as conn:
            return await conn.fetchval("SELECT username FROM users WHERE user_id = $1", user.user_id) == user.username

    asked = 0
    ask = db_module._RAW.replayed

    def counted(conn):
        nonlocal asked
        asked += 1
        return ask(conn)

    monkeypatch.setattr(db_module, "_RAW", db_module._RAW._replace(replayed=counted))

    async def asks_nothing() -> bool:  # the primary's position may move (WAL of its own): try again
        before = asked
        assert await sees(first)
        return asked == before

    try:
        first = await accounts.create_user(db, unique_name())
        index = db.map.for_user(first.user_id)
        await eventually(asks_nothing, timeout=5, what="a read that asks the replica nothing")
        pool = await db._raw_pools[db._replica_dsn(index)]
        assert pool.get_size() == 1, "one replica connection: the next read uses the one that remembers"
        primary_before = FRESH_READS.labels("primary")._value.get()
        await asyncio.to_thread(stack, "replica-delay", "2s")
        try:
            user = None
            while user is None or db.map.for_user(user.user_id) != index:
                user = await accounts.create_user(db, unique_name())  # on the same database
            assert await sees(user)
        finally:
            await asyncio.to_thread(stack, "replica-delay", "0")
    finally:
        await db.dispose()
    assert FRESH_READS.labels("primary")._value.get() > primary_before, "the lagging replica served the read"


class _Counts:
    questions = 0  # to the primaries
    fence_checks = 0  # on the connection a read runs on


async def _two_homes(db, monkeypatch, counts: _Counts) -> tuple[list, set[uuid.UUID]]:
    """A reader on one database following an author on the other, each with a tweet:
    both homes' sources as a rebuild reads them (three rounds), and the tweets, with
    the primaries' questions and the fence checks counted."""
    reader, author = await stars_on_two_databases(db)
    await follows.follow(db, reader.user_id, author.user_id, MAX_FOLLOWING)
    posted = {(await tweet_service.publish(db, u.user_id, "both", None)).tweet_id for u in (reader, author)}
    ask, held = db._ask_flushed, db_module._RAW.held

    async def asked(index: int, shards: int) -> list:
        counts.questions += 1
        return await ask(index, shards)

    def checked(conn, logicals):
        counts.fence_checks += 1
        return held(conn, logicals)

    monkeypatch.setattr(db, "_ask_flushed", asked)
    monkeypatch.setattr(db_module, "_RAW", db_module._RAW._replace(held=checked))
    asks = [graph_reads.HomeAsk(reader.user_id, 2), graph_reads.HomeAsk(author.user_id, 2)]
    return await graph_reads.home_sources(db, asks, 800, 100), posted


def _ids(source) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=source.tweet_ids[i : i + 16]) for i in range(0, len(source.tweet_ids), 16)]


async def test_a_rebuild_asks_each_primary_once_for_its_three_rounds(db, monkeypatch) -> None:
    counts = _Counts()
    (reader, author), posted = await _two_homes(db, monkeypatch, counts)
    assert set(_ids(reader)) == {t.tweet_id for t in reader.tweets} == posted
    assert len(_ids(author)) == 1 and _ids(author)[0] in posted
    assert counts.questions == 2, f"{counts.questions} questions to the primaries of two databases"
    assert counts.fence_checks == 0


async def test_an_answer_older_than_a_map_refresh_is_asked_again_and_checked_where_the_read_runs(
    db, monkeypatch
) -> None:
    # A move's source keeps the rows it handed over for its grace period only: a read
    # that started later on the strength of an old answer could find them deleted.
    # Here every answer is too old by the time its read starts: each round asks again,
    # and each read checks the fence on the primary it then runs on.
    monkeypatch.setattr(db, "_settings", dataclasses.replace(db._settings, shard_map_refresh_seconds=0.0))
    counts = _Counts()
    (reader, _), posted = await _two_homes(db, monkeypatch, counts)
    assert set(_ids(reader)) == {t.tweet_id for t in reader.tweets} == posted
    assert counts.questions >= 5, f"{counts.questions} questions for three rounds over two databases"
    assert counts.fence_checks >= 5, f"{counts.fence_checks} reads checked against the fence"


async def test_homes_read_in_several_statements_are_the_homes_read_in_one(db, monkeypatch) -> None:
    # A group of homes that follow many is read in several statements on one
    # connection (one transaction, one snapshot): here one home a statement.
    monkeypatch.setattr(graph_reads, "MAX_AUTHORS_A_STATEMENT", 1)
    (reader, author), posted = await _two_homes(db, monkeypatch, _Counts())
    assert set(_ids(reader)) == {t.tweet_id for t in reader.tweets} == posted
    assert len(_ids(author)) == 1 and _ids(author)[0] in posted
