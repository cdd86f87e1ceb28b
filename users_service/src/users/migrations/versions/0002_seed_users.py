"""The five users of the original design's init.sql, each row on the shard it hashes to.

Revision ID: 0002
"""

import uuid
from datetime import UTC, datetime

import sqlalchemy as sa
from alembic import context, op

from users.domain.sharding import logical_shard, user_logical_shard

revision = "0002"
down_revision = "0001"
branch_labels = None
depends_on = None

SEED_USERS = {
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11": "alice",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12": "bob",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13": "carol",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14": "dave",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15": "erin",
}
CREATED_AT = datetime(2025, 1, 1, tzinfo=UTC)


def upgrade() -> None:
    # The logical shards this database holds (none for a database added later).
    owned = set(context.config.attributes["owned"])
    bind = op.get_bind()
    for raw_id, name in SEED_USERS.items():
        user_id = uuid.UUID(raw_id)
        if user_logical_shard(user_id) in owned:
            bind.execute(
                sa.text(
                    "INSERT INTO users (user_id, username, created_at) VALUES (:id, :name, :at) ON CONFLICT DO NOTHING"
                ),
                {"id": user_id, "name": name, "at": CREATED_AT},
            )
        if logical_shard(name.lower().encode()) in owned:
            bind.execute(
                sa.text(
                    "INSERT INTO username_claims (username_key, user_id, claimed_at) VALUES (:key, :id, :at) "
                    "ON CONFLICT DO NOTHING"
                ),
                {"key": name.lower(), "id": user_id, "at": CREATED_AT},
            )


def downgrade() -> None:
    ids = [uuid.UUID(raw) for raw in SEED_USERS]
    op.get_bind().execute(sa.text("DELETE FROM users WHERE user_id = ANY(:ids)"), {"ids": ids})
    op.get_bind().execute(sa.text("DELETE FROM username_claims WHERE user_id = ANY(:ids)"), {"ids": ids})
