"""The schema every physical shard carries (the migrations create exactly this)."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID

metadata = sa.MetaData()

users = sa.Table(
    "users",
    metadata,
    sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("username", sa.String(15), nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    # Counters beside the row, not COUNT(*): a profile read stays one index lookup
    # however many followers a celebrity has.
    sa.Column("followers_count", sa.BigInteger, nullable=False, server_default="0"),
    sa.Column("following_count", sa.BigInteger, nullable=False, server_default="0"),
)

# The case-insensitive username claim, on the shard its lower-cased name hashes to.
username_claims = sa.Table(
    "username_claims",
    metadata,
    sa.Column("username_key", sa.String(15), primary_key=True),
    sa.Column("user_id", UUID(as_uuid=True), nullable=False),
    sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
)

# "Whom X follows", on X's shard: written in the follow request's own transaction.
following = sa.Table(
    "following",
    metadata,
    sa.Column("follower_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("followee_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

# "Who follows Y", on Y's shard: written by the relay from the outbox (see relay/).
followers = sa.Table(
    "followers",
    metadata,
    sa.Column("followee_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("follower_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
)

tweets = sa.Table(
    "tweets",
    metadata,
    sa.Column("tweet_id", UUID(as_uuid=True), primary_key=True),
    sa.Column("author_id", UUID(as_uuid=True), nullable=False),
    sa.Column("text", sa.Text, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    sa.Column("idempotency_key", UUID(as_uuid=True), nullable=True),
    # Soft delete: the row keeps its idempotency key, so a late retry of a deleted
    # tweet's request cannot publish it a second time.
    sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
    # NULL keys never collide (PostgreSQL treats NULLs as distinct), so only keyed
    # requests are deduplicated; the database, not a check-then-insert, enforces it.
    sa.UniqueConstraint("author_id", "idempotency_key", name="tweets_author_idempotency_key"),
)
# Only live tweets: every read of an author's tweets skips deleted ones, and a rebuild
# then walks the index alone (migration 0004).
sa.Index(
    "tweets_author_live",
    tweets.c.author_id,
    tweets.c.tweet_id.desc(),
    postgresql_where=~tweets.c.deleted,
)

outbox = sa.Table(
    "outbox",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("topic", sa.String(100), nullable=False),
    sa.Column("key", sa.String(64), nullable=False),
    sa.Column("payload", sa.LargeBinary, nullable=False),
    sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
