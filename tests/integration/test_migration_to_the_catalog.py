"""An existing data set (made by migrations 0001-0004, when the shard map was computed)
migrates to the catalog (0005) without a row moving or going: the catalog's first map
is the computed one, and each database's fence holds what it already held."""

from __future__ import annotations

import asyncio
import uuid

import asyncpg

from tests.support import unique_name
from users.adapters import catalog
from users.domain.sharding import LOGICAL_SHARDS, ShardMap, logical_shard, user_logical_shard
from users.migrate import migrate_database
from users.settings import Settings

COUNT = 3  # databases of the old data set


async def _fresh_databases(names: list[str]) -> list[str]:
    server = Settings().shard_dsns[0].rsplit("/", 1)[0]
    conn = await asyncpg.connect(catalog.plain_dsn(f"{server}/postgres"))
    try:
        for name in names:
            await conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
            await conn.execute(f'CREATE DATABASE "{name}"')
    finally:
        await conn.close()
    return [f"{server}/{name}" for name in names]


async def test_an_old_data_set_keeps_every_row_where_it_is() -> None:
    dsns = await _fresh_databases([f"migrate_{i}" for i in range(COUNT)])
    old = catalog.initial(dsns)  # what a stack of COUNT databases computed before 0005
    for db in range(COUNT):
        await asyncio.to_thread(migrate_database, old, db, "0004")
    users = [uuid.uuid4() for _ in range(60)]
    computed = ShardMap.ranges(COUNT)
    for db, dsn in old.dsns.items():  # rows where the computed map put them
        conn = await asyncpg.connect(catalog.plain_dsn(dsn))
        try:
            for user in users:
                name = unique_name("m")
                if computed.for_user(user) == db:
                    await conn.execute(
                        "INSERT INTO users (user_id, username, created_at) VALUES ($1, $2, now())", user, name
                    )
                    await conn.execute(
                        "INSERT INTO tweets (tweet_id, author_id, text, created_at) VALUES ($1, $2, 'x', now())",
                        uuid.uuid4(),
                        user,
                    )
                if computed.for_username(name.lower()) == db:
                    await conn.execute(
                        "INSERT INTO username_claims (username_key, user_id, claimed_at) VALUES ($1, $2, now())",
                        name.lower(),
                        user,
                    )
            before = await _counts(conn)
        finally:
            await conn.close()
        await asyncio.to_thread(migrate_database, old, db, "head")  # database 0 first: it makes the catalog
        conn = await asyncpg.connect(catalog.plain_dsn(dsn))
        try:
            assert await _counts(conn) == before, f"database {db} lost or gained rows"
            fence = {row[0] for row in await conn.fetch("SELECT logical FROM shard_fence")}
            assert fence == set(computed.logicals_of(db))
            users_here = [row[0] for row in await conn.fetch("SELECT user_id FROM users")]
            claims_here = [row[0] for row in await conn.fetch("SELECT username_key FROM username_claims")]
            assert {user_logical_shard(u) for u in users_here} <= fence
            assert {logical_shard(k.encode()) for k in claims_here} <= fence
        finally:
            await conn.close()
    layout = await catalog.read_dsn(dsns[0])
    assert layout is not None and layout.map.version == 1
    assert layout.map.owners == computed.owners and len(layout.map.owners) == LOGICAL_SHARDS
    assert layout.dsns == dict(enumerate(dsns))


async def _counts(conn: asyncpg.Connection) -> dict[str, int]:
    return {t: await conn.fetchval(f"SELECT count(*) FROM {t}") for t in ("users", "username_claims", "tweets")}
