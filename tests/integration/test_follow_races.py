"""A follow and an unfollow of one pair at once (a toggle tapped twice, a retried follow
meeting an unfollow) each finish: neither waits on the other until PostgreSQL ends one
as a deadlock, which the API answers with a 503."""

from __future__ import annotations

import asyncio

from tests.integration.conftest import MAX_FOLLOWING
from tests.support import unique_name
from users.adapters import follows_repo
from users.services import accounts, follows

ROUNDS = 60


async def test_a_follow_and_an_unfollow_of_one_pair_at_once_both_finish(db) -> None:
    follower = await accounts.create_user(db, unique_name())
    followee = await accounts.create_user(db, unique_name())
    failures: list[BaseException] = []
    for _ in range(ROUNDS):
        await follows.follow(db, follower.user_id, followee.user_id, MAX_FOLLOWING)  # the edge exists
        done = await asyncio.gather(
            follows.unfollow(db, follower.user_id, followee.user_id),
            follows.follow(db, follower.user_id, followee.user_id, MAX_FOLLOWING),
            return_exceptions=True,
        )
        failures += [outcome for outcome in done if isinstance(outcome, BaseException)]
    assert not failures, f"{len(failures)} of {2 * ROUNDS} failed, e.g. {failures[0]!r}"
    async with db.primary_for_user(follower.user_id).connect() as conn:
        edges = await follows_repo.followees(conn, follower.user_id)
    user = await accounts.find_user(db, follower.user_id)
    assert user is not None and user.following_count == len(edges)  # the count follows the edges
