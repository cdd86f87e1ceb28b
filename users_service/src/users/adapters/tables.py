"""The schema every physical shard carries (the migrations create exactly this), and the
shard catalog that database 0 carries besides."""

from __future__ import annotations

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import ARRAY, JSONB, UUID

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

# The logical shards this database holds, by its own account: every write takes a
# key-share lock on its shard's row here, in its own transaction, and a move takes the
# row away (under an update lock) before the map names the new database. A process
# that still routes by the old map is refused, never writes where no one will read.
shard_fence = sa.Table("shard_fence", metadata, sa.Column("logical", sa.SmallInteger, primary_key=True))

# While a move copies logical shards away from this database, a row trigger records
# each changed row here (users.shards.tables installs it); the move's catch-up then
# copies those rows again.
shard_changes = sa.Table(
    "shard_changes",
    metadata,
    sa.Column("seq", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("tbl", sa.Text, nullable=False),
    sa.Column("row", JSONB, nullable=False),
)

# The catalog, in database 0 only: the databases, the shard map and its version, and
# the moves (users.shards). Every process reads the map from here and follows it.
shard_databases = sa.Table(
    "shard_databases",
    metadata,
    sa.Column("id", sa.SmallInteger, primary_key=True),
    sa.Column("dsn", sa.Text, nullable=False, unique=True),
    # Its streaming replica for the internal reads; NULL: the primary serves them.
    sa.Column("replica_dsn", sa.Text, nullable=True),
    sa.Column("added_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
shard_map = sa.Table(
    "shard_map",
    metadata,
    sa.Column("logical", sa.SmallInteger, primary_key=True),
    sa.Column("database_id", sa.SmallInteger, sa.ForeignKey("shard_databases.id"), nullable=False),
)
shard_map_version = sa.Table(
    "shard_map_version",
    metadata,
    sa.Column("one", sa.Boolean, primary_key=True, server_default=sa.true()),
    sa.Column("version", sa.BigInteger, nullable=False),
    sa.CheckConstraint("one", name="shard_map_version_one_row"),
)
shard_moves = sa.Table(
    "shard_moves",
    metadata,
    sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
    sa.Column("logicals", ARRAY(sa.SmallInteger), nullable=False),
    sa.Column("source", sa.SmallInteger, nullable=False),
    sa.Column("target", sa.SmallInteger, nullable=False),
    # copying -> flipped -> done, or rolled_back; a move not done or rolled back is resumed.
    sa.Column("phase", sa.Text, nullable=False),
    sa.Column("blocked_ms", sa.Float, nullable=True),
    sa.Column("started_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    sa.Column("updated_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
)
