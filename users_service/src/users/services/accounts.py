"""Creating and reading users."""

from __future__ import annotations

import uuid
from datetime import datetime, timedelta

from shared_schemas import topics
from shared_schemas.events import UserCreated
from shared_schemas.ids import new_id, utcnow
from users.adapters import fence, outbox_repo, users_repo
from users.adapters.db import ShardedDatabase
from users.domain.errors import Conflict, NotFound
from users.domain.model import User
from users.domain.rules import check_username, username_key
from users.domain.sharding import logical_shard, user_logical_shard
from users.services.routing import follows_moves

# A claim whose user row never committed (the process died between the two shard
# transactions) is taken over after this long; a live request finishes far sooner.
ORPHAN_CLAIM_AGE = timedelta(seconds=30)


async def create_user(db: ShardedDatabase, username: str) -> User:
    """Claim the name on the name's shard, then write the user on the user's shard."""
    check_username(username)
    key = username_key(username)
    user = User(user_id=new_id(), username=username, created_at=utcnow())
    holder, claimed_at = await _claim(db, key, user)
    if holder != user.user_id:
        orphan = utcnow() - claimed_at > ORPHAN_CLAIM_AGE and await find_user(db, holder) is None
        if not (orphan and await _take_over(db, key, holder, user)):
            raise Conflict(f"username {username!r} is taken")
    try:
        await _insert(db, user)
    except BaseException as exc:
        # The commit may have gone through with its answer lost (a connection dropped in
        # COMMIT): then the user exists and the name is theirs, and released it would
        # be claimed again by another user.
        if await _committed(db, user.user_id):
            if isinstance(exc, Exception):
                return user
            raise
        await _release(db, key, user)
        raise
    return user


async def _committed(db: ShardedDatabase, user_id: uuid.UUID) -> bool:
    """Whether the user's row is there; False if that cannot be told now (the claim is
    released, as for a write that surely failed)."""
    try:
        return await find_user(db, user_id) is not None
    except Exception:  # noqa: BLE001 - the database is down: most likely nothing was written
        return False


# Each step is one transaction on one shard, fenced and retried by itself when a move
# takes its shard (services/routing.py): the user keeps the id its claim names.
@follows_moves
async def _claim(db: ShardedDatabase, key: str, user: User) -> tuple[uuid.UUID, datetime]:
    async with db.primaries[db.map.for_username(key)].begin() as conn:
        await fence.hold(conn, [logical_shard(key.encode())])
        return await users_repo.claim_username(conn, key, user.user_id, user.created_at)


@follows_moves
async def _insert(db: ShardedDatabase, user: User) -> None:
    async with db.primary_for_user(user.user_id).begin() as conn:
        await fence.hold(conn, [user_logical_shard(user.user_id)])
        await users_repo.insert_user(conn, user)
        event = UserCreated(
            event_id=new_id(),
            occurred_at=user.created_at,
            user_id=user.user_id,
            username=user.username,
            created_at=user.created_at,
        )
        await outbox_repo.add(conn, topics.USERS.name, str(user.user_id), event)


@follows_moves
async def _release(db: ShardedDatabase, key: str, user: User) -> None:
    async with db.primaries[db.map.for_username(key)].begin() as conn:
        await fence.hold(conn, [logical_shard(key.encode())])
        await users_repo.release_claim(conn, key, user.user_id)


@follows_moves
async def _take_over(db: ShardedDatabase, key: str, holder: uuid.UUID, user: User) -> bool:
    async with db.primaries[db.map.for_username(key)].begin() as conn:
        await fence.hold(conn, [logical_shard(key.encode())])
        return await users_repo.take_over_claim(conn, key, holder, user.user_id, user.created_at)


@follows_moves
async def find_user(db: ShardedDatabase, user_id: uuid.UUID) -> User | None:
    """None only from the database that holds the user's shard: a process whose map is
    behind a move reads the map again rather than answer "no such user"."""
    async with db.raw_primary(db.map.for_user(user_id)) as conn:
        return await users_repo.find(conn, user_id)


async def get_user(db: ShardedDatabase, user_id: uuid.UUID) -> User:
    user = await find_user(db, user_id)
    if user is None:
        raise NotFound("user not found")
    return user
