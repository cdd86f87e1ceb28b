"""Value objects the services pass around (plain data, no I/O)."""

from __future__ import annotations

import uuid
from datetime import datetime

import msgspec


class User(msgspec.Struct, frozen=True):
    user_id: uuid.UUID
    username: str
    created_at: datetime
    followers_count: int = 0
    following_count: int = 0


class Tweet(msgspec.Struct, frozen=True):
    tweet_id: uuid.UUID
    author_id: uuid.UUID
    username: str
    text: str
    created_at: datetime
