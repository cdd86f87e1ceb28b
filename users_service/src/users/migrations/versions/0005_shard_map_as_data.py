"""The shard map becomes data: a catalog in database 0, a fence in every database.

Until now a logical shard lived on database `logical * n // 1024` for the n databases
of USERS_SHARD_DSNS. The catalog starts from exactly that map (users.migrate passes it
in), so an existing stack keeps every row where it is; from then on `python -m
users.shards` changes it, and every process follows the catalog's version
(docs/decisions/0003).

Revision ID: 0005
"""

import sqlalchemy as sa
from alembic import context, op

from users.adapters.tables import shard_changes, shard_databases, shard_fence, shard_map, shard_map_version, shard_moves

revision = "0005"
down_revision = "0004"
branch_labels = None
depends_on = None

_CATALOG = (shard_databases, shard_map, shard_map_version, shard_moves)


def upgrade() -> None:
    attributes = context.config.attributes
    bind = op.get_bind()
    shard_fence.create(bind)
    shard_changes.create(bind)
    if attributes["owned"]:
        op.bulk_insert(shard_fence, [{"logical": logical} for logical in attributes["owned"]])
    # What a move's row trigger runs: the changed row (the old one for a delete) as JSON.
    op.execute(
        """
        CREATE FUNCTION shard_log_change() RETURNS trigger LANGUAGE plpgsql AS $$
        BEGIN
            INSERT INTO shard_changes (tbl, row)
            VALUES (TG_TABLE_NAME, to_jsonb(CASE WHEN TG_OP = 'DELETE' THEN OLD ELSE NEW END));
            RETURN NULL;
        END
        $$
        """
    )
    if attributes["database_id"] != 0:
        return
    for table in _CATALOG:
        table.create(bind)
    layout = attributes["layout"]
    op.bulk_insert(
        shard_databases,
        [{"id": db, "dsn": dsn, "replica_dsn": layout.replicas.get(db)} for db, dsn in sorted(layout.dsns.items())],
    )
    op.bulk_insert(shard_map, [{"logical": logical, "database_id": db} for logical, db in enumerate(layout.map.owners)])
    bind.execute(sa.insert(shard_map_version).values(one=True, version=1))


def downgrade() -> None:
    bind = op.get_bind()
    if context.config.attributes["database_id"] == 0:
        for table in reversed(_CATALOG):
            table.drop(bind)
    op.execute("DROP FUNCTION shard_log_change()")
    shard_changes.drop(bind)
    shard_fence.drop(bind)
