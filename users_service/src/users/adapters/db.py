"""One async engine per physical database (and per read replica), and the shard routing
by the catalog's map, followed while the process runs."""

from __future__ import annotations

import asyncio
import logging
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Iterable
from contextlib import AbstractAsyncContextManager, asynccontextmanager

import asyncpg
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncEngine, create_async_engine

from users.adapters import catalog
from users.domain.sharding import ShardMap
from users.settings import Settings

log = logging.getLogger("users.db")


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
        self._add_databases(dict(enumerate(settings.shard_dsns)))
        # Plain asyncpg pools, for the statements run hundreds of times a second (a
        # rebuild's reads, a tweet's publication): a checkout through SQLAlchemy's async
        # layer (greenlets, pool events) cost more CPU than the statement
        # (docs/decisions/0018). Made on first use, inside the running loop.
        self._raw_pools: dict[str, asyncio.Task[asyncpg.Pool]] = {}  # by DSN: a shard without replica has one
        self._refreshing: asyncio.Lock | None = None

    def _add_databases(self, dsns: dict[int, str]) -> None:
        """Engines for the databases not known yet (ids are dense: 0, 1, 2, ...)."""
        for index in sorted(dsns):
            if index in self.dsns:
                continue
            if index != len(self.primaries):
                raise ValueError(f"database ids must be dense; got {index} after {len(self.primaries) - 1}")
            self.dsns[index] = dsn = dsns[index]
            primary = self._engine(dsn, self._settings)
            replica_dsn = self._replica_dsn(index)
            replica = primary if replica_dsn == dsn else self._engine(replica_dsn, self._settings)
            self._engines |= {primary, replica}
            self.primaries.append(primary)
            self.readers.append(_autocommit(primary))
            self.replicas.append(_autocommit(replica))

    def _replica_dsn(self, index: int) -> str:
        return self._settings.replica_for(index) if index < len(self._settings.shard_dsns) else self.dsns[index]

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
            self._add_databases(layout.dsns)
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

    def replica_for_user(self, user_id: uuid.UUID) -> AsyncEngine:
        return self.replicas[self.map.for_user(user_id)]

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

    def raw_replica(self, index: int) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled asyncpg connection to shard `index`'s replica (its primary without
        one); each statement on it runs by itself, outside a transaction."""
        return self._raw(self._replica_dsn(index))

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
