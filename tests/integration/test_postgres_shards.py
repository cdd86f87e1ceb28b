"""The write model on real PostgreSQL shards: where rows land, and the rules the
database itself enforces."""

from __future__ import annotations

import asyncio
import dataclasses
import importlib
import uuid
from datetime import UTC, datetime, timedelta

import asyncpg
import pytest
import sqlalchemy as sa

from tests.support import eventually, unique_name
from users.adapters import users_repo
from users.adapters.db import ShardedDatabase
from users.adapters.tables import tweets, username_claims, users
from users.domain.errors import Conflict
from users.domain.sharding import user_logical_shard
from users.services import accounts
from users.services import tweets as tweet_service
from users.settings import Settings as UsersSettings


async def _count(db, shard: int, stmt) -> int:
    async with db.primaries[shard].connect() as conn:
        return (await conn.execute(sa.select(sa.func.count()).select_from(stmt.subquery()))).scalar_one()


async def test_a_user_and_its_name_claim_land_on_their_own_shards(db) -> None:
    name = unique_name("Shard")
    user = await accounts.create_user(db, name)
    home, claim = db.map.for_user(user.user_id), db.map.for_username(name.lower())
    for shard in range(len(db.primaries)):
        assert await _count(db, shard, sa.select(users).where(users.c.user_id == user.user_id)) == (shard == home)
        claims = sa.select(username_claims).where(username_claims.c.username_key == name.lower())
        assert await _count(db, shard, claims) == (shard == claim)


async def test_both_shards_hold_users() -> None:
    # Guards the premise of the other tests: the stack really runs two shards.
    from users.settings import Settings

    assert len(Settings().shard_dsns) >= 2


async def test_usernames_are_unique_without_regard_to_case(db) -> None:
    name = unique_name("Case")
    await accounts.create_user(db, name)
    with pytest.raises(Conflict):
        await accounts.create_user(db, name.upper())
    with pytest.raises(Conflict):
        await accounts.create_user(db, name.lower())


async def test_an_orphaned_claim_is_taken_over_but_a_fresh_one_is_not(db) -> None:
    orphan, fresh = unique_name("orph").lower(), unique_name("fresh").lower()
    long_ago = datetime.now(UTC) - timedelta(minutes=5)
    for key, at in ((orphan, long_ago), (fresh, datetime.now(UTC))):
        async with db.primaries[db.map.for_username(key)].begin() as conn:
            await conn.execute(sa.insert(username_claims).values(username_key=key, user_id=uuid.uuid4(), claimed_at=at))
    taken = await accounts.create_user(db, orphan)
    assert (await accounts.get_user(db, taken.user_id)).username == orphan
    with pytest.raises(Conflict):
        await accounts.create_user(db, fresh)


async def test_a_user_whose_commit_answer_was_lost_keeps_the_name(db, monkeypatch) -> None:
    # The user's row committed, and the connection dropped before its answer came: the
    # claim was released, and the name could be claimed by a second user.
    name, written = unique_name("lost").lower(), accounts._insert

    async def answer_lost(db, user) -> None:
        await written(db, user)
        raise ConnectionResetError("the connection dropped in COMMIT")

    monkeypatch.setattr(accounts, "_insert", answer_lost)
    first = await accounts.create_user(db, name)  # created after all
    monkeypatch.undo()
    assert (await accounts.get_user(db, first.user_id)).username == name
    with pytest.raises(Conflict):
        await accounts.create_user(db, name.upper())


async def test_a_user_that_failed_to_be_written_leaves_the_name_free(db, monkeypatch) -> None:
    name = unique_name("failed").lower()

    async def refused(db, user) -> None:
        raise ConnectionRefusedError("the user's database is down")

    monkeypatch.setattr(accounts, "_insert", refused)
    with pytest.raises(ConnectionRefusedError):
        await accounts.create_user(db, name)
    monkeypatch.undo()
    assert (await accounts.create_user(db, name)).username == name  # released: a retry gets it


async def test_tweets_live_on_the_author_shard_and_ids_route_there(db) -> None:
    author = await accounts.create_user(db, unique_name())
    tweet_id = (await tweet_service.publish(db, author.user_id, "where am I", None)).tweet_id
    assert db.map.for_tweet(tweet_id) == db.map.for_user(author.user_id)
    for shard in range(len(db.primaries)):
        found = await _count(db, shard, sa.select(tweets).where(tweets.c.tweet_id == tweet_id))
        assert found == (shard == db.map.for_user(author.user_id))


async def test_racing_retries_make_one_tweet(db) -> None:
    author = await accounts.create_user(db, unique_name())
    key = uuid.uuid4()
    results = await asyncio.gather(*(tweet_service.publish(db, author.user_id, "once", key) for _ in range(20)))
    assert len(set(results)) == 1
    shard = db.map.for_user(author.user_id)
    assert await _count(db, shard, sa.select(tweets).where(tweets.c.author_id == author.user_id)) == 1


async def test_same_key_other_text_is_a_conflict_and_changes_nothing(db) -> None:
    author = await accounts.create_user(db, unique_name())
    key = uuid.uuid4()
    first = await tweet_service.publish(db, author.user_id, "original", key)
    with pytest.raises(Conflict):
        await tweet_service.publish(db, author.user_id, "edited", key)
    listed = await tweet_service.list_by_author(db, author.user_id, None, 10)
    assert [(t.tweet_id, t.text) for t in listed] == [(first.tweet_id, "original")]


async def test_a_pooled_connection_the_server_closed_is_replaced_not_failed(db) -> None:
    # As after a PostgreSQL restart or failover: the next request must not fail on the
    # dead connection its pool still holds (there is no pre-ping; the pool drops closed
    # connections at checkout). Pools of one, so the next read is handed that one: the
    # SQLAlchemy engines' (writes, and the reads still made through them) and the plain
    # asyncpg pools' (a profile, a listing, a tweet's publication).
    user = await accounts.create_user(db, unique_name())
    small = ShardedDatabase(dataclasses.replace(UsersSettings(), pool_size=1))
    try:
        await small.refresh()  # the map as it is now (the growth tests may have moved shards)
        shard = small.map.for_user(user.user_id)
        engine = small.readers[shard]
        killer = await asyncpg.connect(engine.url.set(drivername="postgresql").render_as_string(hide_password=False))
        try:

            async def killed(pid: int) -> None:
                assert await killer.fetchval("SELECT pg_terminate_backend($1)", pid)
                gone = "SELECT count(*) = 0 FROM pg_stat_activity WHERE pid = $1"
                await eventually(lambda: killer.fetchval(gone, pid), timeout=10, what="the backend to end")
                await asyncio.sleep(0.05)  # and its closed socket to reach this event loop

            async with engine.connect() as conn:
                pid = (await conn.execute(sa.text("SELECT pg_backend_pid()"))).scalar_one()
            await killed(pid)
            async with engine.connect() as conn:
                found = await users_repo.get_user(conn, user.user_id)
            assert found is not None and found.username == user.username

            async with small.raw_primary(shard) as raw:
                pid = await raw.fetchval("SELECT pg_backend_pid()")
            await killed(pid)
            assert (await accounts.get_user(small, user.user_id)).username == user.username
        finally:
            await killer.close()
    finally:
        await small.dispose()


async def test_an_authors_listing_and_a_rebuild_walk_the_live_tweets_index(db) -> None:
    # Every read of an author's tweets skips deleted ones; only a predicate written as the
    # index's (`NOT deleted`) lets PostgreSQL walk tweets_author_live: `deleted IS false`
    # fell back to reading and sorting every tweet the author ever wrote.
    from users.adapters import homes_repo, tweets_repo

    author = await accounts.create_user(db, unique_name("Index"))
    shard = db.map.for_user(author.user_id)

    async def plan(sql: str, *args: object) -> str:
        # A tiny table: the planner would read it whole. Vacuumed first, so that its
        # visibility map covers it, as autovacuum keeps a production table's (migration
        # 0006): otherwise an index-only walk costs a heap visit a row by the planner's
        # count, and reading the author's rows in a bitmap scan and sorting them is as
        # cheap on a few rows.
        async with db.raw_primary(shard) as raw:
            await raw.execute("VACUUM tweets")
            await raw.execute("SET enable_seqscan = off")
            try:
                return "\n".join(r[0] for r in await raw.fetch("EXPLAIN " + sql, *args))
            finally:
                await raw.execute("RESET enable_seqscan")  # pooled: leave it as found

    listing = await plan(tweets_repo._LISTING, author.user_id, uuid.uuid4(), 20, user_logical_shard(author.user_id))
    # The page's ids from a walk of the live tweets' index that reads no row, and the
    # cursor an index condition of it: a page deep in a long history does not walk every
    # newer tweet first (a filter would), nor read all of them to sort (a bitmap scan).
    walk = [line for line in listing.splitlines() if "Index Only Scan using tweets_author_live" in line]
    assert walk, listing
    assert any("Index Cond" in line and "tweet_id <" in line for line in listing.splitlines()), listing
    assert "Bitmap" not in listing, listing
    rebuild = await plan(homes_repo._NEWEST_IDS, [author.user_id], [1], [1], [author.user_id], 10, 800)
    assert "tweets_author_live" in rebuild, rebuild


async def test_users_grouped_with_their_shards_are_grouped_as_the_map_says(db: ShardedDatabase) -> None:
    # A rebuild routes its homes' authors once (group_users_and_shards) where it routed
    # them twice: the groups must be group_users' and the shards each group's own.
    ids = [uuid.uuid4() for _ in range(300)]
    ids.append(ids[0])  # a repeat is routed once
    grouped = db.group_users_and_shards(ids)
    assert {index: group for index, (group, _) in grouped.items()} == dict(db.group_users(ids))
    assert len(grouped) > 1, "300 ids should span the stack's databases"
    for index, (group, logicals) in grouped.items():
        assert logicals == {user_logical_shard(u) for u in group}
        assert {db.map.physical(logical) for logical in logicals} == {index}


async def test_every_shard_vacuums_new_tweets_and_follows_after_a_fixed_count_not_a_fifth_of_the_table(
    db: ShardedDatabase,
) -> None:
    # Rebuilds and the fan-out read these tables through index-only scans, which stay
    # index-only only for pages autovacuum has marked all-visible: by default it comes
    # after inserts of a fifth of the table, hours of tweets on a large shard.
    migration = importlib.import_module("users.migrations.versions.0006_vacuum_new_rows_early")
    wanted = {
        "autovacuum_vacuum_insert_scale_factor=0",
        f"autovacuum_vacuum_insert_threshold={migration.INSERTS_BEFORE_VACUUM}",
    }
    for index, engine in enumerate(db.primaries):
        async with engine.connect() as conn:
            rows = await conn.execute(
                sa.text(
                    "SELECT relname, reloptions FROM pg_class WHERE relnamespace = 'public'::regnamespace "
                    "AND relname IN ('tweets', 'following', 'followers') AND relkind = 'r'"
                )
            )
            options = {name: set(opts or []) for name, opts in rows}
        assert set(options) == set(migration.TABLES), (index, options)
        for name, opts in options.items():
            assert wanted <= opts, (index, name, opts)
