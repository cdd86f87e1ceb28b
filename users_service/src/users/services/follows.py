"""Follow and unfollow: the follower's half now, the followee's half through the outbox."""

from __future__ import annotations

import uuid

from shared_schemas import topics
from shared_schemas.events import FollowCreated, FollowRemoved
from shared_schemas.ids import new_id, utcnow
from users.adapters import fence, follows_repo, outbox_repo, users_repo
from users.adapters.db import ShardedDatabase
from users.domain.errors import Conflict, Invalid, NotFound
from users.domain.sharding import user_logical_shard
from users.services.accounts import find_user
from users.services.routing import follows_moves


@follows_moves
async def follow(db: ShardedDatabase, follower: uuid.UUID, followee: uuid.UUID, max_following: int) -> None:
    """Idempotent: following someone already followed changes nothing and succeeds.
    Past `max_following` accounts, a new follow is refused: a page past the timeline's
    window and a rebuild read every followed author, so their number must be bounded."""
    # Existence first: an id of nobody is a 404 whoever else it names.
    if await find_user(db, followee) is None:
        raise NotFound("user to follow not found")
    if follower == followee:
        raise Invalid("you cannot follow yourself")
    now = utcnow()
    async with db.primary_for_user(follower).begin() as conn:
        await fence.hold(conn, [user_logical_shard(follower)])
        # Locked: concurrent follows of one caller take turns, so the count is exact.
        caller = await users_repo.get_user(conn, follower, for_update=True)
        if caller is None:
            raise NotFound("caller (X-User-ID) not found")
        if await follows_repo.add_following(conn, follower, followee, now):
            if caller.following_count >= max_following:
                raise Conflict(f"following limit reached: at most {max_following} accounts")
            await users_repo.add_to_counts(conn, follower, following=1)
            event = FollowCreated(event_id=new_id(), occurred_at=now, follower_id=follower, followee_id=followee)
            await outbox_repo.add(conn, topics.FOLLOWS.name, str(follower), event)


@follows_moves
async def unfollow(db: ShardedDatabase, follower: uuid.UUID, followee: uuid.UUID) -> None:
    """Idempotent: unfollowing someone not followed succeeds too."""
    now = utcnow()
    async with db.primary_for_user(follower).begin() as conn:
        await fence.hold(conn, [user_logical_shard(follower)])
        # Locked first, as a follow locks it: a follow and an unfollow of one pair at
        # once would otherwise each hold what the other waits for (the unfollow's
        # deleted edge, the follow's caller row) until PostgreSQL ended one (a 503).
        if await users_repo.get_user(conn, follower, for_update=True) is None:
            raise NotFound("caller (X-User-ID) not found")
        if await follows_repo.remove_following(conn, follower, followee):
            await users_repo.add_to_counts(conn, follower, following=-1)
            event = FollowRemoved(event_id=new_id(), occurred_at=now, follower_id=follower, followee_id=followee)
            await outbox_repo.add(conn, topics.FOLLOWS.name, str(follower), event)
