"""The relay's second half of a follow (users/services/follow_edges.py), on the real
databases: relays of different shards apply edges to the same followees at once."""

from __future__ import annotations

import asyncio
import uuid
from datetime import UTC, datetime

from shared_schemas import codec, topics
from shared_schemas.events import FollowCreated
from tests.support import unique_name
from users.adapters.outbox_repo import OutboxRow
from users.services import accounts, follow_edges


def _follows(follower: uuid.UUID, followees: list[uuid.UUID]) -> list[OutboxRow]:
    now = datetime.now(UTC)
    return [
        OutboxRow(
            n,
            topics.FOLLOWS.name,
            str(follower),
            codec.encode(FollowCreated(event_id=uuid.uuid4(), occurred_at=now, follower_id=follower, followee_id=f)),
            now,
        )
        for n, f in enumerate(followees)
    ]


async def test_relays_counting_the_same_followees_in_opposite_orders_both_land(db) -> None:
    # Each relay's rows name the followees in its outbox's order; two relays whose rows
    # named two followees in opposite orders deadlocked on the users' rows, and one of
    # them failed its pass.
    for _ in range(5):
        first = await accounts.create_user(db, unique_name())
        second = await accounts.create_user(db, unique_name())
        while db.map.for_user(second.user_id) != db.map.for_user(first.user_id):
            second = await accounts.create_user(db, unique_name())  # both on one database
        fans = [await accounts.create_user(db, unique_name()) for _ in range(2)]
        pair = [first.user_id, second.user_id]
        await asyncio.gather(
            follow_edges.apply(db, _follows(fans[0].user_id, pair)),
            follow_edges.apply(db, _follows(fans[1].user_id, pair[::-1])),
        )
        for followee in pair:
            assert (await accounts.get_user(db, followee)).followers_count == 2
