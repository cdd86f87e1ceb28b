"""The shard catalog in database 0: which databases there are and which logical shards
each holds (the map), with the map's version. Read by every process, changed only by
`python -m users.shards` (docs/decisions/0003)."""

from __future__ import annotations

from collections.abc import Sequence
from typing import NamedTuple

import asyncpg
from sqlalchemy.engine import make_url

from users.domain.sharding import ShardMap


class Layout(NamedTuple):
    map: ShardMap
    dsns: dict[int, str]  # database id -> SQLAlchemy URL
    replicas: dict[int, str]  # database id -> its replica's URL, for those with one


def initial(dsns: Sequence[str], replicas: Sequence[str] = ()) -> Layout:
    """The layout of a data set whose catalog does not exist yet: USERS_SHARD_DSNS in
    order, the logical shards in contiguous ranges over them, and USERS_REPLICA_DSNS
    (what migration 0005 writes)."""
    found = {i: dsn.strip() for i, dsn in enumerate(replicas) if i < len(dsns) and dsn.strip()}
    return Layout(ShardMap.ranges(len(dsns)), dict(enumerate(dsns)), found)


async def version(conn: asyncpg.Connection) -> int | None:
    """The map's version; None before migration 0005 made the catalog."""
    if await conn.fetchval("SELECT to_regclass('shard_map_version')") is None:
        return None
    return await conn.fetchval("SELECT version FROM shard_map_version")


async def read(conn: asyncpg.Connection) -> Layout | None:
    """The whole layout, as of one snapshot; None before the catalog exists."""
    async with conn.transaction(isolation="repeatable_read", readonly=True):
        current = await version(conn)
        if current is None:
            return None
        owners = [row[0] for row in await conn.fetch("SELECT database_id FROM shard_map ORDER BY logical")]
        rows = await conn.fetch("SELECT id, dsn, replica_dsn FROM shard_databases ORDER BY id")
    dsns = {row[0]: row[1] for row in rows}
    replicas = {row[0]: row[2] for row in rows if row[2]}
    return Layout(ShardMap(owners, current), dsns, replicas)


async def read_dsn(dsn: str) -> Layout | None:
    """`read` over a connection of its own, for the commands (migrate, shards)."""
    conn = await asyncpg.connect(plain_dsn(dsn))
    try:
        return await read(conn)
    finally:
        await conn.close()


def plain_dsn(dsn: str) -> str:
    """A SQLAlchemy URL (postgresql+asyncpg://...) as asyncpg itself takes it."""
    return make_url(dsn).set(drivername="postgresql").render_as_string(hide_password=False)
