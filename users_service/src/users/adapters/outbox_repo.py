"""SQL for the transactional outbox: written by the services, drained by the relay."""

from __future__ import annotations

from datetime import datetime
from typing import NamedTuple

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects import postgresql
from sqlalchemy.ext.asyncio import AsyncConnection

from shared_schemas import codec
from shared_schemas.events import Event
from users.adapters.raw_sql import RawStatement
from users.adapters.tables import outbox

# The relay LISTENs on this channel. An insert into the outbox NOTIFYs it (a statement
# trigger, migration 0003), delivered only when the transaction commits: the relay
# never wakes for a row it cannot see yet.
CHANNEL = "outbox"


# The statements of every event, built once and run with bind parameters: building one
# cost as much CPU as running it (docs/decisions/0011).
_INSERT = sa.insert(outbox)
# The relay's, on plain asyncpg (a pass a shard, tens a second under load): through
# SQLAlchemy's async layer (a greenlet switch, a checkout, a transaction object and
# result processing each) they were a large share of the relay's CPU
# (docs/decisions/0018).
_BATCH = RawStatement(
    sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload, outbox.c.created_at)
    .order_by(outbox.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
# The same, past the keys whose rows wait (a followee's database down: the relay keeps
# a user's events in order, so every later row of theirs waits too).
_BATCH_SKIPPING = RawStatement(
    sa.select(outbox.c.id, outbox.c.topic, outbox.c.key, outbox.c.payload, outbox.c.created_at)
    .where(outbox.c.key != sa.all_(sa.bindparam("skip", type_=postgresql.ARRAY(sa.Text))))
    .order_by(outbox.c.id)
    .limit(sa.bindparam("limit", type_=sa.Integer))
    .with_for_update(skip_locked=True)
)
_DELETE = RawStatement(
    sa.delete(outbox).where(outbox.c.id == sa.any_(sa.bindparam("ids", type_=postgresql.ARRAY(sa.BigInteger))))
)
_BACKLOG = RawStatement(sa.select(sa.func.count()).select_from(outbox))
_LOCK = RawStatement(sa.select(sa.func.pg_try_advisory_xact_lock(sa.literal_column("7314"))))


def recorded_for(events: sa.Select) -> sa.CTE:
    """An event recorded for each row of `events` (key, payload), in one statement with
    the change that makes them (a data-modifying CTE), so in one transaction without
    BEGIN and COMMIT (bind parameter `topic`)."""
    rows = events.subquery()
    values = sa.select(sa.bindparam("topic", type_=outbox.c.topic.type), *rows.c)
    return sa.insert(outbox).from_select(["topic", "key", "payload"], values).returning(outbox.c.id).cte("recorded")


async def add(conn: AsyncConnection, topic: str, key: str, event: Event) -> None:
    """Record `event` in the caller's transaction: it is published iff the change commits."""
    await conn.execute(_INSERT, {"topic": topic, "key": key, "payload": codec.encode(event)})


class OutboxRow(NamedTuple):
    id: int  # commit order within the shard
    topic: str
    key: str
    payload: bytes
    created_at: datetime


async def take_batch(conn: asyncpg.Connection, limit: int, skip: frozenset[str] = frozenset()) -> list[OutboxRow]:
    """The oldest unpublished rows (but those of the keys in `skip`), in order, locked
    for this relay; others skip them."""
    if skip:
        return [OutboxRow(*row) for row in await _BATCH_SKIPPING.fetch(conn, limit=limit, skip=sorted(skip))]
    return [OutboxRow(*row) for row in await _BATCH.fetch(conn, limit=limit)]


async def delete(conn: asyncpg.Connection, ids: list[int]) -> None:
    """Published rows are removed at once: the outbox holds only what is still owed."""
    await _DELETE.execute(conn, ids=ids)


async def backlog(conn: asyncpg.Connection) -> int:
    return int(await _BACKLOG.fetchval(conn))


async def try_lock_shard(conn: asyncpg.Connection) -> bool:
    """One relay at a time per shard (transaction-scoped advisory lock): with several
    relays running, a shard's rows still go out in commit order, so one user's events
    stay in order; extra relays take over the moment a holder dies."""
    return bool(await _LOCK.fetchval(conn))
