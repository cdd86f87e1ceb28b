"""SQL for the two halves of the follow graph."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters.raw_sql import RawStatement
from users.adapters.tables import followers, following


async def add_following(conn: AsyncConnection, follower: uuid.UUID, followee: uuid.UUID, now: datetime) -> bool:
    """True when the edge is new (so counts and events change only once)."""
    stmt = (
        insert(following)
        .values(follower_id=follower, followee_id=followee, created_at=now)
        .on_conflict_do_nothing()
        .returning(following.c.follower_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def remove_following(conn: AsyncConnection, follower: uuid.UUID, followee: uuid.UUID) -> bool:
    stmt = (
        sa.delete(following)
        .where(following.c.follower_id == follower, following.c.followee_id == followee)
        .returning(following.c.follower_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def add_follower(conn: AsyncConnection, followee: uuid.UUID, follower: uuid.UUID, now: datetime) -> bool:
    stmt = (
        insert(followers)
        .values(followee_id=followee, follower_id=follower, created_at=now)
        .on_conflict_do_nothing()
        .returning(followers.c.follower_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def remove_follower(conn: AsyncConnection, followee: uuid.UUID, follower: uuid.UUID) -> bool:
    stmt = (
        sa.delete(followers)
        .where(followers.c.followee_id == followee, followers.c.follower_id == follower)
        .returning(followers.c.follower_id)
    )
    return (await conn.execute(stmt)).first() is not None


# A page of followers per tweet fanned out: built once, run with bind parameters
# (building it cost as much CPU as running it: docs/decisions/0011).
# Fan-out asks for a page of followers for every tweet: run raw (adapters/raw_sql.py).
_FIRST_PAGE = (
    sa.select(followers.c.follower_id)
    .where(followers.c.followee_id == sa.bindparam("followee", type_=followers.c.followee_id.type))
    .order_by(followers.c.follower_id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
)
_PAGES = (
    RawStatement(_FIRST_PAGE),
    RawStatement(
        _FIRST_PAGE.where(followers.c.follower_id > sa.bindparam("after", type_=followers.c.follower_id.type))
    ),
)


async def followers_page(
    conn: asyncpg.Connection, followee: uuid.UUID, after: uuid.UUID | None, limit: int
) -> list[uuid.UUID]:
    """Keyset paging by follower id: constant cost per page even for a celebrity."""
    if after is None:
        rows = await _PAGES[0].fetch(conn, followee=followee, limit=limit)
    else:
        rows = await _PAGES[1].fetch(conn, followee=followee, limit=limit, after=after)
    return [row[0] for row in rows]


# The first page of followers of several authors at once, one index walk each (a
# coalesced fan-out call: docs/decisions/0021).
_EACH = (
    sa.func.unnest(sa.bindparam("followees", type_=sa.ARRAY(followers.c.followee_id.type)))
    .table_valued("followee_id")
    .render_derived(name="each")
)
_FIRST_PAGES = RawStatement(
    sa.select(
        _EACH.c.followee_id,
        sa.func.array(
            sa.select(followers.c.follower_id)
            .where(followers.c.followee_id == _EACH.c.followee_id)
            .order_by(followers.c.follower_id)
            .limit(sa.bindparam("limit", type_=sa.Integer))
            .scalar_subquery()
        ),
    )
)


async def first_pages(
    conn: asyncpg.Connection, followees: list[uuid.UUID], limit: int
) -> dict[uuid.UUID, list[uuid.UUID]]:
    rows = await _FIRST_PAGES.fetch(conn, followees=followees, limit=limit)
    return {uuid.UUID(bytes=row[0].bytes): row[1] for row in rows}


async def followees(conn: AsyncConnection, follower: uuid.UUID) -> list[uuid.UUID]:
    stmt = sa.select(following.c.followee_id).where(following.c.follower_id == follower)
    return list((await conn.execute(stmt)).scalars())
