"""Request and response bodies of the public API (msgspec validates and encodes them)."""

from __future__ import annotations

import uuid

import msgspec

from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import TweetItem, UserInfo
from users.domain.model import Tweet, User


class CreateUser(msgspec.Struct, forbid_unknown_fields=False):
    username: str


class NewUser(msgspec.Struct):
    user_id: uuid.UUID
    username: str
    created_at: str


class FollowRequest(msgspec.Struct):
    follow_user_id: uuid.UUID


class PublishTweet(msgspec.Struct):
    text: str
    idempotency_key: uuid.UUID | None = None


class PublishedTweet(msgspec.Struct):
    tweet_id: uuid.UUID
    created_at: str


class TweetPage(msgspec.Struct):
    tweets: list[TweetItem]
    next_cursor: str | None


def user_info(user: User) -> UserInfo:
    return UserInfo(
        user_id=user.user_id,
        username=user.username,
        created_at=iso_ms(user.created_at),
        followers_count=user.followers_count,
        following_count=user.following_count,
    )


def tweet_item(tweet: Tweet) -> TweetItem:
    return TweetItem(
        tweet_id=tweet.tweet_id,
        user_id=tweet.author_id,
        username=tweet.username,
        text=tweet.text,
        created_at=iso_ms(tweet.created_at),
    )
