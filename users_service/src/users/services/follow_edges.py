"""The second half of a follow: "who follows Y" on Y's shard, written from the outbox.

The follow request writes "X follows Y" on X's shard with its event in the outbox.
The relay applies the reverse edge before it publishes the event, and applies it again
if it crashed before marking the row: the writes are idempotent (insert-if-absent,
delete-if-present, counts moved only when a row changed), so a crash between the two
halves heals on the next pass.

A followee's database that cannot be reached holds back the events of its followees
only: they wait in the outbox, the rest of the batch goes out (the relay keeps each
user's later events behind them), and that database is not asked again for a moment.
"""

from __future__ import annotations

import logging
import time
import uuid
from collections import defaultdict

from shared_schemas import codec, topics
from shared_schemas.events import FollowCreated, FollowRemoved
from users.adapters import fence, follows_repo, users_repo
from users.adapters.db import ShardedDatabase
from users.adapters.outages import is_outage
from users.adapters.outbox_repo import OutboxRow
from users.domain.sharding import user_logical_shard
from users.services.routing import follows_moves

log = logging.getLogger("users.relay")

# A followee's database that could not be reached is asked again after this long (and
# the relay passes its waiting rows by until then).
REST_SECONDS = 5.0


class Unreachable:
    """The followees' databases that could not be reached lately, by id: not asked again
    until `rest_seconds` have passed (a database that hangs would hold every pass up
    for its connect timeout)."""

    def __init__(self, rest_seconds: float) -> None:
        self.rest_seconds = rest_seconds
        self._until: dict[int, float] = {}

    def resting(self, shard: int) -> bool:
        return time.monotonic() < self._until.get(shard, 0.0)

    def failed(self, shard: int) -> None:
        self._until[shard] = time.monotonic() + self.rest_seconds

    def answered(self, shard: int) -> None:
        self._until.pop(shard, None)


@follows_moves
async def apply(db: ShardedDatabase, rows: list[OutboxRow], unreachable: Unreachable | None = None) -> set[int]:
    """Write the second halves of `rows`' follow events; the ids of the rows whose
    followee's database could not be reached (to wait in the outbox)."""
    unreachable = unreachable or Unreachable(0.0)  # none rests: each is asked every time
    by_shard: dict[int, list[tuple[int, FollowCreated | FollowRemoved]]] = defaultdict(list)
    for row in rows:
        if row.topic != topics.FOLLOWS.name:
            continue
        event = codec.decode(row.payload)
        if isinstance(event, (FollowCreated, FollowRemoved)):
            by_shard[db.map.for_user(event.followee_id)].append((row.id, event))
    waiting: set[int] = set()
    for shard, events in by_shard.items():
        if unreachable.resting(shard):
            waiting.update(row_id for row_id, _ in events)
            continue
        try:
            await _apply_on(db, shard, [event for _, event in events])
        except Exception as exc:
            if not is_outage(exc):
                raise
            log.warning("a followee's database cannot be reached", extra={"database": shard, "error": repr(exc)})
            unreachable.failed(shard)
            waiting.update(row_id for row_id, _ in events)
        else:
            unreachable.answered(shard)
    return waiting


async def _apply_on(db: ShardedDatabase, shard: int, events: list[FollowCreated | FollowRemoved]) -> None:
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
