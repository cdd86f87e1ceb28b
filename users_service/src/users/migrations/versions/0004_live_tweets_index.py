"""Index only the tweets that are not deleted: a home's rebuild reads ids alone.

A rebuild after a lost Redis asks each shard for the newest 800 tweet ids of a user's
followees. With `NOT deleted` in the index's predicate the walk of
(author_id, tweet_id DESC) is an index-only scan: no heap page per tweet, where an
index of every tweet must read each row to see whether it was deleted
(docs/decisions/0018). The listings and the pull-model pages filter on `NOT deleted`
too, so the partial index serves them as well and the old one goes.

Built CONCURRENTLY: a live shard keeps taking writes while it builds.

Revision ID: 0004
"""

from alembic import op

revision = "0004"
down_revision = "0003"
branch_labels = None
depends_on = None


def upgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute(
            "CREATE INDEX CONCURRENTLY IF NOT EXISTS tweets_author_live ON tweets (author_id, tweet_id DESC) "
            "WHERE NOT deleted"
        )
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS tweets_author_recent")


def downgrade() -> None:
    with op.get_context().autocommit_block():
        op.execute("CREATE INDEX CONCURRENTLY IF NOT EXISTS tweets_author_recent ON tweets (author_id, tweet_id DESC)")
        op.execute("DROP INDEX CONCURRENTLY IF EXISTS tweets_author_live")
