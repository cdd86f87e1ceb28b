"""New tweets and follows enter the visibility map within a fixed number of rows.

A rebuild reads a home from index-only scans (tweets_author_live for each followee's
newest tweets, the following table's key for the followees) and the fan-out its
followers from the followers table's key (docs/decisions/0018). A scan is index-only
only where the visibility map says a heap page is all-visible, which vacuum sets. By
default autovacuum visits a table after inserts of a fifth of its size: on a shard of
hundreds of millions of tweets, the newest hours of them, the ones rebuilds read most,
would each cost a heap visit. Here: after this many new rows whatever the table's size
(about 10 s of a primary's tweets at the planned 5,000 a second; autovacuum comes at
most once a naptime, a minute by default). Such a pass reads only the heap pages not
yet all-visible, and skips the indexes while few rows are dead (docs/decisions/0018).

Revision ID: 0006
"""

from alembic import op

revision = "0006"
down_revision = "0005"
branch_labels = None
depends_on = None

TABLES = ("tweets", "following", "followers")
INSERTS_BEFORE_VACUUM = 50_000


def upgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} SET (autovacuum_vacuum_insert_scale_factor = 0, "
            f"autovacuum_vacuum_insert_threshold = {INSERTS_BEFORE_VACUUM})"
        )


def downgrade() -> None:
    for table in TABLES:
        op.execute(
            f"ALTER TABLE {table} RESET (autovacuum_vacuum_insert_scale_factor, autovacuum_vacuum_insert_threshold)"
        )
