"""The events the Users Service publishes and the Timeline Service consumes.

Every event is a msgspec Struct tagged by its `type` field, JSON on the wire (readable
with kafka-console-consumer). `v` is the schema version of that type: add optional
fields freely; anything else is a new version that consumers must accept side by side.
"""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class _Event(msgspec.Struct, tag_field="type", frozen=True, kw_only=True):
    event_id: uuid.UUID
    occurred_at: datetime
    v: int = 1


class UserCreated(_Event, tag="user.created", frozen=True):
    """A user now exists. Key: user_id."""

    user_id: uuid.UUID
    username: str
    created_at: datetime


class FollowCreated(_Event, tag="follow.created", frozen=True):
    """`follower_id` now follows `followee_id`. Key: follower_id.

    Published only after the "who follows followee" edge is stored on the followee's
    shard, so a consumer that asks for followee's followers already sees this one.
    """

    follower_id: uuid.UUID
    followee_id: uuid.UUID


class FollowRemoved(_Event, tag="follow.removed", frozen=True):
    """`follower_id` no longer follows `followee_id`. Key: follower_id."""

    follower_id: uuid.UUID
    followee_id: uuid.UUID


class TweetCreated(_Event, tag="tweet.created", frozen=True):
    """A tweet was published. Key: author_id.

    Carries everything a timeline item shows, so the consumer can cache the tweet
    without asking the Users Service. `author_followers_count` is the author's follower
    count when the tweet was written: the consumer compares it with its celebrity
    threshold to choose fan-out on write or merge on read.
    """

    tweet_id: uuid.UUID
    author_id: uuid.UUID
    username: str
    text: str
    created_at: datetime
    author_followers_count: int = 0


class TweetDeleted(_Event, tag="tweet.deleted", frozen=True):
    """A tweet was deleted; it must leave every timeline and cache. Key: author_id."""

    tweet_id: uuid.UUID
    author_id: uuid.UUID


Event = UserCreated | FollowCreated | FollowRemoved | TweetCreated | TweetDeleted
