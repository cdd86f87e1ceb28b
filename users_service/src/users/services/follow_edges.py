"""The second half of a follow: "who follows Y" on Y's shard, written from the outbox.

The follow request writes "X follows Y" on X's shard with its event in the outbox.
The relay applies the reverse edge before it publishes the event, and applies it again
if it crashed before marking the row: the writes are idempotent (insert-if-absent,
delete-if-present, counts moved only when a row changed), so a crash between the two
halves heals on the next pass.
"""

from __future__ import annotations

import uuid
from collections import defaultdict

from shared_schemas import codec, topics
from shared_schemas.events import FollowCreated, FollowRemoved
from users.adapters import fence, follows_repo, users_repo
from users.adapters.db import ShardedDatabase
from users.adapters.outbox_repo import OutboxRow
from users.domain.sharding import user_logical_shard
from users.services.routing import follows_moves


@follows_moves
async def apply(db: ShardedDatabase, rows: list[OutboxRow]) -> None:
    by_shard: dict[int, list[FollowCreated | FollowRemoved]] = defaultdict(list)
    for row in rows:
        if row.topic != topics.FOLLOWS.name:
            continue
        event = codec.decode(row.payload)
        if isinstance(event, (FollowCreated, FollowRemoved)):
            by_shard[db.map.for_user(event.followee_id)].append(event)
    for shard, events in by_shard.items():
        # One transaction per followee shard; within it, events keep their outbox order
        # so follow-then-unfollow ends unfollowed.
        async with db.primaries[shard].begin() as conn:
            await fence.hold(conn, {user_logical_shard(event.followee_id) for event in events})
            moved: dict[uuid.UUID, int] = defaultdict(int)
            for event in events:
                if isinstance(event, FollowCreated):
                    if await follows_repo.add_follower(conn, event.followee_id, event.follower_id, event.occurred_at):
                        moved[event.followee_id] += 1
                elif await follows_repo.remove_follower(conn, event.followee_id, event.follower_id):
                    moved[event.followee_id] -= 1
            # The counts last, in one order of the followees: relays of other shards
            # update the same users' rows at the same time, and two that took them in
            # opposite orders deadlocked. (No other relay writes these edge rows: an
            # edge's events all come from its follower's shard.)
            for followee in sorted(moved):
                if moved[followee]:
                    await users_repo.add_to_counts(conn, followee, followers=moved[followee])
