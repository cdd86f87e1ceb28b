"""Parked events applied again, unless the source of truth has moved past them."""

from __future__ import annotations

from shared_schemas.events import Event, FollowCreated, FollowRemoved, TweetCreated
from timeline.services.fanout import Fanout
from timeline.services.ports import UsersSource

APPLIED = "applied"


async def replay(event: Event, fanout: Fanout, users: UsersSource) -> str:
    """Apply `event` as the worker would (every handler is idempotent, so replaying it
    twice is harmless) and say what happened. An event parked long ago may have been
    overtaken: the tweet deleted, the follow undone. Those are skipped, or the replay
    would bring back what a later event took away."""
    match event:
        case TweetCreated():
            if not await users.tweets_by_ids([event.tweet_id]):
                return "skipped: the tweet was deleted since"
        case FollowCreated() | FollowRemoved():
            following = {u.user_id for u in (await users.following(event.follower_id)).following}
            if isinstance(event, FollowCreated) and event.followee_id not in following:
                return "skipped: unfollowed since"
            if isinstance(event, FollowRemoved) and event.followee_id in following:
                return "skipped: followed again since"
    await fanout.handle(event)
    return APPLIED
