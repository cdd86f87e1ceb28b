"""What moves with a logical shard, and how it is copied, caught up and removed.

Every row belongs to one logical shard through one column (0003): a user and
"whom X follows" through the user, "who follows Y" through Y, a tweet (and its
idempotency key) through its author, a username claim through the lower-cased name,
an outbox row through its key. PostgreSQL cannot compute the BLAKE2b that maps a key
to its logical shard, so the owners are found here: the users (and claims) of a
database are listed and hashed, and every other row is selected by user id.

Rows are copied with binary COPY from one server straight into the other, never
decoded here.
"""

from __future__ import annotations

import asyncio
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Collection, Iterable
from typing import NamedTuple

import asyncpg

from users.adapters import tables
from users.domain.sharding import logical_shard, user_logical_shard

CHUNK = 2000  # keys per statement


class Keyed(NamedTuple):
    """A table whose rows move with their owner's logical shard."""

    name: str
    keys: tuple[str, ...]  # the primary key, in order
    owner: str  # the column (a user id or a username key) that names the logical shard
    array_types: tuple[str, ...]  # the keys' PostgreSQL array types, for unnest

    @property
    def columns(self) -> list[str]:
        return [column.name for column in tables.metadata.tables[self.name].columns]

    def logical(self, owner: str) -> int:
        if self.name == "username_claims":
            return logical_shard(owner.encode())
        return user_logical_shard(uuid.UUID(owner))


USERS = Keyed("users", ("user_id",), "user_id", ("uuid[]",))
CLAIMS = Keyed("username_claims", ("username_key",), "username_key", ("text[]",))
FOLLOWING = Keyed("following", ("follower_id", "followee_id"), "follower_id", ("uuid[]", "uuid[]"))
FOLLOWERS = Keyed("followers", ("followee_id", "follower_id"), "followee_id", ("uuid[]", "uuid[]"))
TWEETS = Keyed("tweets", ("tweet_id",), "author_id", ("uuid[]",))
# Parents first: a copy never holds a follow or a tweet whose user it lacks.
KEYED = (USERS, CLAIMS, FOLLOWING, FOLLOWERS, TWEETS)
BY_NAME = {table.name: table for table in KEYED}


class Owned(NamedTuple):
    """The owners of some logical shards on one database: whom every row hangs off."""

    user_ids: list[uuid.UUID]
    claim_keys: list[str]


async def owned(conn: asyncpg.Connection, logicals: Collection[int]) -> Owned:
    wanted = set(logicals)
    users = [row[0] for row in await conn.fetch("SELECT user_id FROM users") if user_logical_shard(row[0]) in wanted]
    claims = [
        row[0]
        for row in await conn.fetch("SELECT username_key FROM username_claims")
        if logical_shard(row[0].encode()) in wanted
    ]
    return Owned(users, claims)


def _chunks(items: list, size: int = CHUNK) -> Iterable[list]:
    for start in range(0, len(items), size):
        yield items[start : start + size]


def _by_owner(table: Keyed, owners: Owned) -> tuple[str, list]:
    """The WHERE clause (on $1, an array) and the owner values of `table`'s rows."""
    if table is CLAIMS:
        return "username_key = ANY($1::text[])", owners.claim_keys
    return f"{table.owner} = ANY($1::uuid[])", owners.user_ids


async def pipe(source: asyncpg.Connection, target: asyncpg.Connection, table: Keyed, where: str, *args) -> int:
    """COPY `table`'s rows matching `where` from `source` into `target`, in binary, as
    a stream; returns how many."""
    columns = ", ".join(table.columns)
    queue: asyncio.Queue[bytes | None] = asyncio.Queue(maxsize=64)

    async def produce() -> None:
        try:
            await source.copy_from_query(
                f"SELECT {columns} FROM {table.name} WHERE {where}", *args, output=queue.put, format="binary"
            )
        finally:
            await queue.put(None)

    async def chunks() -> AsyncIterator[bytes]:
        while (chunk := await queue.get()) is not None:
            yield chunk

    producing = asyncio.ensure_future(produce())
    try:
        status = await target.copy_to_table(table.name, source=chunks(), columns=table.columns, format="binary")
    except BaseException:
        producing.cancel()
        raise
    await producing
    return int(status.split()[-1])


async def copy_owned(source: asyncpg.Connection, target: asyncpg.Connection, owners: Owned, progress) -> dict[str, int]:
    """Every row of `owners` from `source` into `target` (which holds none of them)."""
    copied: dict[str, int] = {}
    for table in KEYED:
        where, values = _by_owner(table, owners)
        count = 0
        for part in _chunks(values):
            count += await pipe(source, target, table, where, part)
        copied[table.name] = count
        progress(f"copied {count} rows of {table.name}")
    return copied


async def delete_owned(conn: asyncpg.Connection, owners: Owned) -> int:
    """Every row of `owners` on `conn`'s database, children first; returns how many."""
    deleted = 0
    for table in reversed(KEYED):
        where, values = _by_owner(table, owners)
        for part in _chunks(values):
            status = await conn.execute(f"DELETE FROM {table.name} WHERE {where}", part)
            deleted += int(status.split()[-1])
    return deleted


# --- the catch-up: rows changed on the source since the copy ------------------------

# While a move runs, a row trigger on each keyed table of the source records every
# changed row (the old one for a delete) in shard_changes (migration 0005).
_TRIGGER = "shard_move_log"


async def _each_table(conn: asyncpg.Connection, statement: str) -> None:
    """`statement` (with `{table}`) on each keyed table, each in a transaction of its
    own: holding one table's lock while waiting for the next could deadlock with a
    writer that holds the second and wants the first (a follow locks users, then
    following). A lock timeout, tried again: never a long queue of writers behind the
    DDL's lock. It must outlast deadlock_timeout (1 s): only a wait that long cancels an
    autovacuum of the table (the usual holder after a big copy or clean-up), which
    would otherwise hold the lock for as long as it runs."""
    for table in KEYED:
        for attempt in range(1, 31):
            try:
                async with conn.transaction():
                    await conn.execute("SET LOCAL lock_timeout = '2s'")
                    await conn.execute(statement.format(table=table.name))
                break
            except (asyncpg.LockNotAvailableError, asyncpg.DeadlockDetectedError):
                if attempt == 30:
                    raise
                await asyncio.sleep(0.1 * attempt)


async def start_logging(conn: asyncpg.Connection) -> None:
    """Record every change of the keyed tables from now on. CREATE TRIGGER waits for
    the writes in flight: whatever commits after it is recorded, whatever committed
    before is in a snapshot taken after it. The triggers stay between moves, disabled
    (re-enabling takes the same mild lock; dropping would take one that blocks reads)."""
    await _each_table(
        conn,
        f"CREATE OR REPLACE TRIGGER {_TRIGGER} AFTER INSERT OR UPDATE OR DELETE ON {{table}} "
        "FOR EACH ROW EXECUTE FUNCTION shard_log_change()",
    )
    await _each_table(conn, f"ALTER TABLE {{table}} ENABLE TRIGGER {_TRIGGER}")


async def stop_logging(conn: asyncpg.Connection) -> None:
    """Stop recording, and forget what was recorded."""
    present = await conn.fetchval("SELECT count(*) FROM pg_trigger WHERE tgname = $1", _TRIGGER)
    if present:
        await _each_table(conn, f"ALTER TABLE {{table}} DISABLE TRIGGER {_TRIGGER}")
    await conn.execute("DELETE FROM shard_changes")


class Changes(NamedTuple):
    taken: int  # log rows consumed, of every logical shard
    keys: dict[str, set[tuple]]  # table -> primary keys of the moving shards' changed rows

    @property
    def changed(self) -> int:
        return sum(len(keys) for keys in self.keys.values())


_TAKE = """
DELETE FROM shard_changes WHERE seq IN (SELECT seq FROM shard_changes WHERE seq <= $2 ORDER BY seq LIMIT $1)
RETURNING tbl, row->>'user_id', row->>'username_key', row->>'follower_id', row->>'followee_id',
          row->>'tweet_id', row->>'author_id'
"""
_LOG_CHUNK = 20_000  # log rows per statement


async def take_changes(conn: asyncpg.Connection, logicals: Collection[int]) -> Changes:
    """Consume the changes recorded so far (in the caller's transaction: they come back
    if it rolls back), in chunks, and keep the keys of the rows in `logicals`. Only
    what was recorded when this began: a busy source cannot keep it going. A change
    whose writer has not committed yet is not seen and stays for the next round:
    consuming by deletion, not from a position, never skips one."""
    wanted = set(logicals)
    keys: dict[str, set[tuple]] = defaultdict(set)
    upto = await conn.fetchval("SELECT max(seq) FROM shard_changes")
    taken = 0
    while upto is not None:
        rows = await conn.fetch(_TAKE, _LOG_CHUNK, upto)
        taken += len(rows)
        for tbl, user_id, username_key, follower_id, followee_id, tweet_id, author_id in rows:
            values = {
                "user_id": user_id,
                "username_key": username_key,
                "follower_id": follower_id,
                "followee_id": followee_id,
                "tweet_id": tweet_id,
                "author_id": author_id,
            }
            table = BY_NAME[tbl]
            if table.logical(values[table.owner]) in wanted:
                keys[tbl].add(tuple(values[key] for key in table.keys))
        if len(rows) < _LOG_CHUNK:
            break
    return Changes(taken, dict(keys))


async def resync(source: asyncpg.Connection, target: asyncpg.Connection, changes: Changes) -> None:
    """Make `target`'s copy of each changed row what `source` holds now: deleted there,
    the current row copied again. Idempotent, and blind to the order of the changes."""
    for table in KEYED:
        keys = sorted(changes.keys.get(table.name, ()))
        for part in _chunks(keys):
            columns = [list(column) for column in zip(*part)]
            casts = ", ".join(f"${i + 1}::{kind}" for i, kind in enumerate(table.array_types))
            where = f"({', '.join(table.keys)}) IN (SELECT * FROM unnest({casts}))"
            await target.execute(f"DELETE FROM {table.name} WHERE {where}", *columns)
            await pipe(source, target, table, where, *columns)


# --- the outbox: rows not yet published go with their shard --------------------------


class OutboxRow(NamedTuple):
    topic: str
    key: str
    payload: bytes
    created_at: object


def _outbox_logical(key: str) -> int | None:
    try:
        return user_logical_shard(uuid.UUID(key))
    except ValueError:
        return None


async def _outbox_ids(conn: asyncpg.Connection, logicals: Collection[int]) -> list[int]:
    """The ids of `conn`'s outbox rows whose key falls in `logicals`."""
    wanted = set(logicals)
    return [row[0] for row in await conn.fetch("SELECT id, key FROM outbox") if _outbox_logical(row[1]) in wanted]


async def take_outbox(conn: asyncpg.Connection, logicals: Collection[int]) -> list[OutboxRow]:
    """Remove the unpublished events of `logicals` from `conn`'s outbox (in its
    transaction), oldest first. The caller holds the database's relay lock, so no relay
    is publishing them meanwhile."""
    ids = await _outbox_ids(conn, logicals)
    if not ids:
        return []
    rows = await conn.fetch(
        "DELETE FROM outbox WHERE id = ANY($1::bigint[]) RETURNING id, topic, key, payload, created_at", ids
    )
    return [OutboxRow(*row[1:]) for row in sorted(rows, key=lambda row: row[0])]


async def put_outbox(conn: asyncpg.Connection, rows: list[OutboxRow]) -> None:
    """Append `rows` to `conn`'s outbox in their order (they get its next ids, before any
    later event of theirs: a user's events stay in order)."""
    if rows:
        await conn.executemany(
            "INSERT INTO outbox (topic, key, payload, created_at) VALUES ($1, $2, $3, $4)", [tuple(row) for row in rows]
        )


async def drop_outbox(conn: asyncpg.Connection, logicals: Collection[int]) -> int:
    """Forget `conn`'s unpublished events of `logicals` (a target's copies, when a move
    that had handed them over is undone: the source still has them)."""
    ids = await _outbox_ids(conn, logicals)
    status = await conn.execute("DELETE FROM outbox WHERE id = ANY($1::bigint[])", ids)
    return int(status.split()[-1])
