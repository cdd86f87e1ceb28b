"""Request and response bodies of the public API (msgspec validates and encodes them)."""

from __future__ import annotations

import uuid
from typing import Annotated

import msgspec

from shared_schemas.http_contract import uuid_field
from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import TweetItem, UserInfo
from users.domain import rules
from users.domain.model import Tweet, User

# The rules of users.domain.rules, as the OpenAPI document states them (the domain checks
# them, with its own messages). JSON Schema counts code points as sent: a tweet's 280 are
# counted after NFC, which the description says (docs/decisions/0015).
Username = Annotated[
    str,
    msgspec.Meta(
        description="1 to 15 of A-Z, a-z, 0-9 and _; unique without regard to case.",
        extra_json_schema={"extra": {"pattern": f"^{rules.USERNAME_RE.pattern}$"}},
    ),
]
TweetText = Annotated[
    str,
    msgspec.Meta(
        description=(
            f"Normalized to Unicode NFC, then 1 to {rules.MAX_TWEET_CODE_POINTS} code points,"
            " not only whitespace, no NUL."
        ),
        extra_json_schema={
            "extra": {
                "min_length": 1,
                "max_length": rules.MAX_TWEET_CODE_POINTS,
                "pattern": r"^[^\u0000]*[^\s\u0000][^\u0000]*$",
            }
        },
    ),
]


class CreateUser(msgspec.Struct, forbid_unknown_fields=False):
    username: Username


class NewUser(msgspec.Struct):
    user_id: uuid.UUID
    username: str
    created_at: str


class FollowRequest(msgspec.Struct):
    follow_user_id: Annotated[str, uuid_field("The user to follow.")]


class PublishTweet(msgspec.Struct):
    text: TweetText
    idempotency_key: Annotated[str, uuid_field("Makes retries safe: one tweet per key and author.")] | None = None


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
