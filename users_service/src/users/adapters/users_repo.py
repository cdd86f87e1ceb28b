"""SQL for users and username claims."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import insert
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters import fence
from users.adapters.tables import username_claims, users
from users.domain.model import User
from users.domain.sharding import user_logical_shard


async def claim_username(
    conn: AsyncConnection, key: str, user_id: uuid.UUID, now: datetime
) -> tuple[uuid.UUID, datetime]:
    """Claim `key` for `user_id`; returns who holds the claim afterwards, and since when."""
    stmt = (
        insert(username_claims)
        .values(username_key=key, user_id=user_id, claimed_at=now)
        .on_conflict_do_nothing()
        .returning(username_claims.c.user_id, username_claims.c.claimed_at)
    )
    claimed = (await conn.execute(stmt)).first()
    if claimed is None:
        holder = sa.select(username_claims.c.user_id, username_claims.c.claimed_at).where(
            username_claims.c.username_key == key
        )
        claimed = (await conn.execute(holder)).one()
    return claimed[0], claimed[1]


async def take_over_claim(conn: AsyncConnection, key: str, old: uuid.UUID, new: uuid.UUID, now: datetime) -> bool:
    """Move an orphaned claim (its user row never committed) to a new user, atomically."""
    stmt = (
        sa.update(username_claims)
        .where(username_claims.c.username_key == key, username_claims.c.user_id == old)
        .values(user_id=new, claimed_at=now)
    )
    return (await conn.execute(stmt)).rowcount == 1


async def release_claim(conn: AsyncConnection, key: str, user_id: uuid.UUID) -> None:
    await conn.execute(
        sa.delete(username_claims).where(username_claims.c.username_key == key, username_claims.c.user_id == user_id)
    )


async def insert_user(conn: AsyncConnection, user: User) -> None:
    await conn.execute(
        sa.insert(users).values(user_id=user.user_id, username=user.username, created_at=user.created_at)
    )


# Built once, run with bind parameters: on the path of every follow, profile read and
# internal user lookup, where building a statement costs about as much CPU as running
# it (docs/decisions/0011).
_USER = sa.select(
    users.c.user_id, users.c.username, users.c.created_at, users.c.followers_count, users.c.following_count
).where(users.c.user_id == sa.bindparam("user_id"))
_USER_FOR_UPDATE = _USER.with_for_update()


async def get_user(conn: AsyncConnection, user_id: uuid.UUID, *, for_update: bool = False) -> User | None:
    row = (await conn.execute(_USER_FOR_UPDATE if for_update else _USER, {"user_id": user_id})).first()
    return User(*row) if row else None


# A user by id with this database's fence for their shard, in one statement on a plain
# asyncpg connection: a profile read and a follow's check of the followee, through
# SQLAlchemy's async layer, cost the Users API more than the statement (and a second
# read for the fence of a user not found).
_FIND = f"""
SELECT f.held, u.user_id, u.username, u.created_at, u.followers_count, u.following_count
FROM {fence.held_row("$2")} LEFT JOIN users u ON u.user_id = $1::uuid
"""


async def find(conn: asyncpg.Connection, user_id: uuid.UUID) -> User | None:
    """The user, or None if there is none (ShardMoved if this database no longer holds
    their shard: it cannot say there is none)."""
    logical = user_logical_shard(user_id)
    row = await conn.fetchrow(_FIND, user_id, logical)  # always a row: the fence's
    if row[1] is None:
        fence.raise_unless_held(row[0], logical)
        return None
    return User(row[1], row[2], row[3], row[4], row[5])


async def get_users(conn: AsyncConnection, user_ids: list[uuid.UUID]) -> list[User]:
    stmt = sa.select(
        users.c.user_id, users.c.username, users.c.created_at, users.c.followers_count, users.c.following_count
    ).where(users.c.user_id.in_(user_ids))
    return [User(*row) for row in await conn.execute(stmt)]


async def add_to_counts(conn: AsyncConnection, user_id: uuid.UUID, *, followers: int = 0, following: int = 0) -> None:
    await conn.execute(
        sa.update(users)
        .where(users.c.user_id == user_id)
        .values(
            followers_count=users.c.followers_count + followers,
            following_count=users.c.following_count + following,
        )
    )
