"""The outbox wakes its relay itself: a statement trigger NOTIFYs on every insert.

Without it, every writer would send `NOTIFY outbox` after its outbox row: one more
round trip in every write transaction, and one more line each new writer must
remember. The trigger does the same in the insert's own statement; as with an explicit
NOTIFY, PostgreSQL delivers the notification only if the transaction commits
(docs/decisions/0004).

Revision ID: 0003
"""

from alembic import op

revision = "0003"
down_revision = "0002"
branch_labels = None
depends_on = None


def upgrade() -> None:
    op.execute(
        """
        CREATE FUNCTION outbox_notify() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            PERFORM pg_notify('outbox', '');
            RETURN NULL;
        END
        $$
        """
    )
    op.execute(
        "CREATE TRIGGER outbox_notify AFTER INSERT ON outbox FOR EACH STATEMENT EXECUTE FUNCTION outbox_notify()"
    )


def downgrade() -> None:
    op.execute("DROP TRIGGER outbox_notify ON outbox")
    op.execute("DROP FUNCTION outbox_notify()")
