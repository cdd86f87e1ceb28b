"""The shard schema: users, username claims, both follow directions, tweets, outbox.

Revision ID: 0001
"""

import sqlalchemy as sa
from alembic import op
from sqlalchemy.dialects.postgresql import UUID

revision = "0001"
down_revision = None
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.create_table(
        "users",
        sa.Column("user_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("username", sa.String(15), nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("followers_count", sa.BigInteger, nullable=False, server_default="0"),
        sa.Column("following_count", sa.BigInteger, nullable=False, server_default="0"),
    )
    op.create_table(
        "username_claims",
        sa.Column("username_key", sa.String(15), primary_key=True),
        sa.Column("user_id", UUID(as_uuid=True), nullable=False),
        sa.Column("claimed_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "following",
        sa.Column("follower_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("followee_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "followers",
        sa.Column("followee_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("follower_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
    )
    op.create_table(
        "tweets",
        sa.Column("tweet_id", UUID(as_uuid=True), primary_key=True),
        sa.Column("author_id", UUID(as_uuid=True), nullable=False),
        sa.Column("text", sa.Text, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False),
        sa.Column("idempotency_key", UUID(as_uuid=True), nullable=True),
        sa.Column("deleted", sa.Boolean, nullable=False, server_default=sa.false()),
        sa.UniqueConstraint("author_id", "idempotency_key", name="tweets_author_idempotency_key"),
    )
    op.create_index("tweets_author_recent", "tweets", ["author_id", sa.text("tweet_id DESC")])
    op.create_table(
        "outbox",
        sa.Column("id", sa.BigInteger, sa.Identity(), primary_key=True),
        sa.Column("topic", sa.String(100), nullable=False),
        sa.Column("key", sa.String(64), nullable=False),
        sa.Column("payload", sa.LargeBinary, nullable=False),
        sa.Column("created_at", sa.DateTime(timezone=True), nullable=False, server_default=sa.func.now()),
    )


def downgrade() -> None:
    for table in ("outbox", "tweets", "followers", "following", "username_claims", "users"):
        op.drop_table(table)
