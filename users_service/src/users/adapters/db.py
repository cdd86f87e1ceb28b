"""One async engine per physical database (and per read replica), and the shard routing
by the catalog's map, followed while the process runs."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from prometheus_client import Counter
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from users.adapters import catalog
from users.domain.sharding import ShardMap
from users.settings import Settings

log = logging.getLogger("users.db")

# WAL positions as byte counts. A commit's record is inserted before the commit is
# visible: a read that began after it sees it once the replica replayed this far.
_WRITTEN = "SELECT pg_current_wal_insert_lsn() - '0/0'::pg_lsn"
_REPLAYED = "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn"
FRESH_READS = Counter(
    "users_fresh_reads_total",
    "Internal reads that had to see every committed write, by the server that served them",
    ["served_by"],
)


class ShardedDatabase:
    """`primaries` for transactions; `readers` (the primaries) and `replicas` (each
    shard's read replica, or its primary) for reads of one statement, which run in
    autocommit: no BEGIN and ROLLBACK around them, two round trips of the three.

    Each list is indexed by database id. The map and the databases come from the
    catalog in database 0 (adapters/catalog.py): `refresh` reads them again when the
    map's version changed, and `watch` does so every few seconds, so a process follows
    a move without a restart. Until the first refresh, the map is the one the catalog
    starts from (contiguous ranges over USERS_SHARD_DSNS)."""

    def __init__(self, settings: Settings) -> None:
        self._settings = settings
        self.map = ShardMap.ranges(len(settings.shard_dsns), version=0)
        self.dsns: dict[int, str] = {}
        self.primaries: list[AsyncEngine] = []
        self.readers: list[AsyncEngine] = []
        self.replicas: list[AsyncEngine] = []
        self._engines: set[AsyncEngine] = set()  # what to dispose: the views share their pools
        self.replica_dsns: dict[int, str] = {}
        self._add_databases(catalog.initial(settings.shard_dsns, settings.replica_dsns))
        # Plain asyncpg pools, for the statements run hundreds of times a second (a
        # rebuild's reads, a tweet's publication): a checkout through SQLAlchemy's async
        # layer (greenlets, pool events) cost more CPU than the statement
        # (docs/decisions/0018). Made on first use, inside the running loop.
        self._raw_pools: dict[str, asyncio.Task[asyncpg.Pool]] = {}  # by DSN: a shard without replica has one
        self._refreshing: asyncio.Lock | None = None
        self._replayed: dict[str, int] = {}  # replica DSN -> the highest WAL position seen replayed

    def _add_databases(self, layout: catalog.Layout) -> None:
        """Engines for the databases not known yet (ids are dense: 0, 1, 2, ...), and for
        a replica that changed."""
        for index in sorted(layout.dsns):
            dsn, replica_dsn = layout.dsns[index], layout.replicas.get(index, layout.dsns[index])
            if index in self.dsns:
                if self._replica_dsn(index) != replica_dsn:
                    self.replica_dsns[index] = replica_dsn
                    replica = self._engine(replica_dsn, self._settings)
                    self._engines.add(replica)
                    self.replicas[index] = _autocommit(replica)
                continue
            if index != len(self.primaries):
                raise ValueError(f"database ids must be dense; got {index} after {len(self.primaries) - 1}")
            self.dsns[index], self.replica_dsns[index] = dsn, replica_dsn
            primary = self._engine(dsn, self._settings)
            replica = primary if replica_dsn == dsn else self._engine(replica_dsn, self._settings)
            self._engines |= {primary, replica}
            self.primaries.append(primary)
            self.readers.append(_autocommit(primary))
            self.replicas.append(_autocommit(replica))

    def _replica_dsn(self, index: int) -> str:
        return self.replica_dsns.get(index, self.dsns[index])

    async def refresh(self) -> bool:
        """Follow the catalog: read the map again if its version changed. True when it
        did. A refresh already under way is waited for, not repeated."""
        if self._refreshing is None:
            self._refreshing = asyncio.Lock()
        seen = self.map.version
        async with self._refreshing:
            if self.map.version != seen:
                return True  # someone else just read it
            async with self._raw(self._settings.shard_dsns[0]) as conn:
                current = await catalog.version(conn)
                if current is None or current == self.map.version:
                    return False
                layout = await catalog.read(conn)
            if layout is None:
                return False
            self._add_databases(layout)
            self.map = layout.map
            log.info("following a new shard map", extra={"version": layout.map.version})
            return True

    async def watch(self, interval: float) -> None:
        """Refresh every `interval` seconds until cancelled; a failed read is logged
        and tried again, the old map in force meanwhile."""
        while True:
            try:
                await self.refresh()
            except Exception as exc:  # noqa: BLE001 - database 0 down: keep the map we have
                log.warning("cannot read the shard map", extra={"version": self.map.version, "error": repr(exc)})
            await asyncio.sleep(interval)

    @staticmethod
    def _engine(dsn: str, settings: Settings) -> AsyncEngine:
        engine = create_async_engine(
            dsn,
            pool_size=settings.pool_size,
            max_overflow=settings.pool_size,
            pool_timeout=settings.db_pool_timeout,
            connect_args={"timeout": settings.db_connect_timeout, "command_timeout": settings.db_statement_timeout},
        )
        event.listen(engine.sync_engine, "checkout", _drop_if_closed)
        return engine

    def primary_for_user(self, user_id: uuid.UUID) -> AsyncEngine:
        return self.primaries[self.map.for_user(user_id)]

    def reader_for_user(self, user_id: uuid.UUID) -> AsyncEngine:
        return self.readers[self.map.for_user(user_id)]

    def group_users(self, user_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        """User ids grouped by physical shard: one query per shard, never one per id."""
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for user_id in dict.fromkeys(user_ids):
            groups[self.map.for_user(user_id)].append(user_id)
        return groups

    def group_tweets(self, tweet_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for tweet_id in dict.fromkeys(tweet_ids):
            groups[self.map.for_tweet(tweet_id)].append(tweet_id)
        return groups

    async def caught_up(self, index: int) -> bool:
        """Whether shard `index`'s replica has replayed every write its primary had
        committed when this was asked (waiting up to USERS_REPLICA_MAX_WAIT_SECONDS).
        False without a replica: the primary serves."""
        replica, primary = self._replica_dsn(index), self.dsns[index]
        if replica == primary:
            return False
        async with self._raw(primary) as conn:
            needed = int(await conn.fetchval(_WRITTEN))
        deadline = time.monotonic() + self._settings.replica_max_wait
        while self._replayed.get(replica, -1) < needed:
            async with self._raw(replica) as conn:
                replayed = await conn.fetchval(_REPLAYED)
            if replayed is None:  # not in recovery: a primary itself, never behind
                return True
            self._replayed[replica] = max(self._replayed.get(replica, -1), int(replayed))
            if self._replayed[replica] >= needed:
                break
            if time.monotonic() >= deadline:
                FRESH_READS.labels("primary").inc()
                return False
            await asyncio.sleep(0.002)
        FRESH_READS.labels("replica").inc()
        return True

    @asynccontextmanager
    async def raw_fresh(self, index: int) -> AsyncIterator[asyncpg.Connection]:
        """A connection that sees every write committed before the call: to the replica
        if it has caught up (`caught_up`), else to the primary."""
        dsn = self._replica_dsn(index) if await self.caught_up(index) else self.dsns[index]
        async with self._raw(dsn) as conn:
            yield conn

    async def fresh(self, index: int) -> AsyncEngine:
        """`raw_fresh` as an engine (autocommit reads): the replica's or the primary's."""
        return self.replicas[index] if await self.caught_up(index) else self.readers[index]

    def raw_primary(self, index: int) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """The same on shard `index`'s primary, for writes of one statement each."""
        return self._raw(self.dsns[index])

    @asynccontextmanager
    async def _raw(self, dsn: str) -> AsyncIterator[asyncpg.Connection]:
        task = self._raw_pools.get(dsn)
        if task is None:
            s = self._settings
            task = self._raw_pools[dsn] = asyncio.ensure_future(
                asyncpg.create_pool(
                    catalog.plain_dsn(dsn),
                    min_size=1,
                    max_size=s.pool_size,
                    timeout=s.db_connect_timeout,
                    command_timeout=s.db_statement_timeout,
                    reset=_keep_session,
                )
            )
        try:
            pool = await asyncio.shield(task)
        except BaseException:
            if task.done() and self._raw_pools.get(dsn) is task:  # it failed: the next caller tries again
                del self._raw_pools[dsn]
            raise
        async with pool.acquire(timeout=self._settings.db_pool_timeout) as conn:
            yield conn

    async def dispose(self) -> None:
        for engine in self._engines:
            await engine.dispose()
        for task in self._raw_pools.values():
            if not task.done():
                task.cancel()
            elif not task.cancelled() and task.exception() is None:
                await task.result().close()
        self._raw_pools.clear()


async def _keep_session(_conn: asyncpg.Connection) -> None:
    """The raw pools run one statement at a time, each its own transaction: no session
    state to undo, so no reset statement (a round trip) each time a connection goes
    back to its pool."""


def _autocommit(engine: AsyncEngine) -> AsyncEngine:
    """A view of `engine` (same pool) whose connections run without a transaction."""
    return engine.execution_options(isolation_level="AUTOCOMMIT")


def _drop_if_closed(dbapi_connection, _record, _proxy) -> None:
    """Hand out no pooled connection the server has closed (a restart, a failover, an
    idle timeout): the pool then opens a fresh one in its place.

    In place of `pool_pre_ping`, which under the asyncpg dialect costs three round trips
    per checkout (BEGIN, an empty query, ROLLBACK), the main cost of a short request.
    asyncpg learns of a closed socket from the event loop, so this check is free; a
    connection lost without the socket closing is caught when it is used (SQLAlchemy
    then invalidates the pool), as it would be in the middle of a transaction anyway.
    """
    if dbapi_connection.driver_connection.is_closed():
        raise exc.DisconnectionError("the server closed this pooled connection")
