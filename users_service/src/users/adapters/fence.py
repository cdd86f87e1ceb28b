"""The write fence: a write holds its logical shard's row in shard_fence, in its own
transaction, so that a move can never leave it writing to the old database.

A write takes a key-share lock (what a foreign-key check takes: writers never wait on
each other); a move takes the row under an update lock, which waits for the writes in
flight and holds off new ones for its final catch-up, then deletes it. A write that
then reads the fence finds no row and raises ShardMoved: the caller reads the map
again and goes to the new database (services/routing.py, docs/decisions/0003)."""

from __future__ import annotations

from collections.abc import Collection

import asyncpg
import sqlalchemy as sa
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters.tables import shard_fence
from users.domain.errors import ShardMoved

_HOLD = (
    sa.select(shard_fence.c.logical)
    .where(shard_fence.c.logical.in_(sa.bindparam("logicals", expanding=True)))
    .order_by(shard_fence.c.logical)  # one lock order for every taker (the mover too)
    .with_for_update(read=True, key_share=True)
)


def held(logicals: sa.Select) -> sa.CTE:
    """The fence rows of `logicals` (a select of logical shards) that this database
    holds, key-share locked in the one lock order, as a CTE: for a write of one
    statement, which writes only the rows whose shard's fence row is there."""
    return (
        sa.select(shard_fence.c.logical)
        .where(shard_fence.c.logical.in_(logicals))
        .order_by(shard_fence.c.logical)
        .with_for_update(read=True, key_share=True)
        .cte("fence")
    )


_HELD = sa.select(sa.func.count()).where(shard_fence.c.logical.in_(sa.bindparam("logicals", expanding=True)))


async def count_held(conn: AsyncConnection, logicals: list[int]) -> int:
    """How many of `logicals` this database holds, without a lock (for reads)."""
    return (await conn.execute(_HELD, {"logicals": logicals})).scalar_one()


async def held_of(conn: asyncpg.Connection, logicals: list[int]) -> set[int]:
    """Which of `logicals` this database holds, without a lock, on a plain asyncpg
    connection: whether a read that found nothing looked where the rows are."""
    rows = await conn.fetch("SELECT logical FROM shard_fence WHERE logical = ANY($1::smallint[])", logicals)
    return {row[0] for row in rows}


# For a plain asyncpg read of one statement that may find nothing: a FROM item `f` of
# one row whose `held` says whether this database holds the logical shard in the given
# parameter, to join the read to (LEFT JOIN), so that "nothing" and the fence come back
# in one round trip; `raise_unless_held` then raises ShardMoved if the shard is gone.
def held_row(param: str) -> str:
    return f"(SELECT EXISTS (SELECT FROM shard_fence WHERE logical = {param}::smallint) AS held) f"


def raise_unless_held(held: bool, logical: int) -> None:
    if not held:
        raise ShardMoved([logical])


async def hold(conn: AsyncConnection, logicals: Collection[int]) -> None:
    """Hold the fence rows of `logicals` until the transaction ends; ShardMoved if
    this database no longer holds one of them."""
    wanted = set(logicals)
    found = {row[0] for row in await conn.execute(_HOLD, {"logicals": sorted(wanted)})}
    if found != wanted:
        raise ShardMoved(sorted(wanted - found))
