"""One async engine per physical database (and per read replica), and the shard routing
by the catalog's map, followed while the process runs."""

from __future__ import annotations

import asyncio
import logging
import time
import uuid
from collections import defaultdict
from collections.abc import AsyncIterator, Awaitable, Callable, Collection, Hashable, Iterable
from contextlib import AbstractAsyncContextManager, AsyncExitStack, asynccontextmanager
from typing import Any, NamedTuple

import asyncpg
import sqlalchemy as sa
from prometheus_client import Counter
from sqlalchemy import event, exc
from sqlalchemy.ext.asyncio import AsyncConnection, AsyncEngine, create_async_engine

from shared_schemas.coalesce import Coalescer
from users.adapters import catalog, fence
from users.domain.errors import ShardMoved
from users.domain.sharding import ShardMap, user_logical_shard
from users.settings import Settings

log = logging.getLogger("users.db")

# WAL positions as byte counts (docs/decisions/0020), and the fence rows a database
# holds, for plain asyncpg. Reads that name hundreds of shards (a rebuild's authors, a
# group of reads asking the primary together) get every row it holds (at most 1,024):
# `= ANY` of a parameter compares each fence row with each shard named, in a cold start
# a good part of PostgreSQL's CPU per rebuild (docs/benchmarks.md, "The fence's
# question"). A few shards are counted by the index. fence.count_held is the SQLAlchemy
# reads' (few).
_ALL_HELD = "array(SELECT logical FROM shard_fence)"
_COUNT_HELD = "SELECT count(*) FROM shard_fence WHERE logical = ANY($1::smallint[])"
_FEW_SHARDS = 16
_FLUSHED_AND_HELD = f"SELECT pg_current_wal_flush_lsn() - '0/0'::pg_lsn, {_ALL_HELD}"
_REPLAYED = "SELECT pg_last_wal_replay_lsn() - '0/0'::pg_lsn"


class _Probe(NamedTuple):
    """The two questions a fresh read asks of the connection it will read on."""

    replayed: Callable[[Any], Awaitable[Any]]
    held: Callable[[Any, list[int]], Awaitable[Any]]
    remembers: bool  # the connection keeps what its server replayed (a _RawConnection)


class _RawConnection(asyncpg.Connection):
    """A raw pool's connection, which remembers the furthest WAL position its server
    said it had replayed: replay only moves forward, so a statement begun after that
    answer sees every write up to there, and a fresh read that needs no more asks
    nothing (docs/decisions/0020). Kept per connection, not per address: behind a
    balancer, each connection is to one server (a proxy that moves one connection
    between servers is not supported)."""

    __slots__ = ("_replayed",)

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        self._replayed = -1

    def replayed_at_least(self, needed: int) -> bool:
        return self._replayed >= needed

    def note_replayed(self, replayed: int) -> None:
        self._replayed = max(self._replayed, replayed)


async def _count_held(conn: asyncpg.Connection, logicals: list[int]) -> int:
    """How many of `logicals` (distinct) the database holds."""
    if len(logicals) <= _FEW_SHARDS:
        return int(await conn.fetchval(_COUNT_HELD, logicals))
    return len(set(logicals).intersection(await conn.fetchval(f"SELECT {_ALL_HELD}")))


class FreshAnswer(NamedTuple):
    """A primary's answer to a fresh read's question, and when it was asked."""

    asked_at: float  # time.monotonic() before asking: the answer is at least this recent
    needed: int  # its flushed WAL position
    held: frozenset[int]  # the logical shards it held


# A request's answers by database: its later reads of a database reuse the first one's
# (docs/decisions/0020).
FreshAnswers = dict[int, FreshAnswer]


_RAW = _Probe(lambda conn: conn.fetchval(_REPLAYED), _count_held, True)
_ENGINE = _Probe(lambda conn: conn.scalar(sa.text(_REPLAYED)), fence.count_held, False)
_NOT_IN_RECOVERY = 1 << 62  # a primary's answer: it has everything
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
        self._groups: dict[Hashable, Coalescer[Any, Any]] = {}

    def _add_databases(self, layout: catalog.Layout) -> None:
        """Engines for the databases not known yet (ids are dense: 0, 1, 2, ...), and for
        a replica that changed."""
        for index in sorted(layout.dsns):
            dsn, replica_dsn = layout.dsns[index], layout.replicas.get(index, layout.dsns[index])
            if index in self.dsns and self.dsns[index] != dsn:
                # The catalog names this database otherwise (USERS_SHARD_DSNS, which
                # seeded the map, lists them in another order, or it was moved): follow
                # the catalog, or every write there would be refused by its fence.
                self.dsns[index] = dsn
                primary = self._engine(dsn, self._settings)
                self._engines.add(primary)
                self.primaries[index], self.readers[index] = primary, _autocommit(primary)
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

    def group_users(self, user_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        """User ids grouped by physical shard: one query per shard, never one per id."""
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for user_id in dict.fromkeys(user_ids):
            groups[self.map.for_user(user_id)].append(user_id)
        return groups

    def group_users_and_shards(self, user_ids: Iterable[uuid.UUID]) -> dict[int, tuple[list[uuid.UUID], set[int]]]:
        """`group_users`, with the logical shards of each group (what a fresh read there
        is checked against), in one pass: each id hashed once, not once to group it and
        again for its fence check (a rebuild routes a home's hundred authors:
        docs/benchmarks.md, "Each author routed once")."""
        groups: dict[int, tuple[list[uuid.UUID], set[int]]] = {}
        owners = self.map.owners
        for user_id in dict.fromkeys(user_ids):
            logical = user_logical_shard(user_id)
            group = groups.get(owners[logical])
            if group is None:
                group = groups[owners[logical]] = ([], set())
            group[0].append(user_id)
            group[1].add(logical)
        return groups

    def group_tweets(self, tweet_ids: Iterable[uuid.UUID]) -> dict[int, list[uuid.UUID]]:
        groups: dict[int, list[uuid.UUID]] = defaultdict(list)
        for tweet_id in dict.fromkeys(tweet_ids):
            groups[self.map.for_tweet(tweet_id)].append(tweet_id)
        return groups

    def raw_fresh(
        self, index: int, logicals: Collection[int] = (), answers: FreshAnswers | None = None
    ) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled asyncpg connection to database `index` that sees every write
        committed before the call, to rows of `logicals` (which the database must still
        hold: ShardMoved if a move took one): its replica once that has replayed as far
        (waiting up to USERS_REPLICA_MAX_WAIT_SECONDS), else its primary.

        `answers`: the request's earlier answers from the primaries (filled in here).
        A request that reads a database in several rounds asks its primary once: its
        reads then see every write committed before the request began (not always
        what its earlier rounds saw on another server), which is what "fresh" promises
        the request; the answer's fence is trusted for one map refresh interval
        (`_trusted`)."""
        return self._fresh(
            index,
            logicals,
            lambda: self._raw(self._replica_dsn(index)),
            lambda: self._raw(self.dsns[index]),
            _RAW,
            answers,
        )

    def fresh(self, index: int, logicals: Collection[int] = ()) -> AbstractAsyncContextManager[AsyncConnection]:
        """`raw_fresh` as a SQLAlchemy connection (autocommit reads)."""
        return self._fresh(index, logicals, self.replicas[index].connect, self.readers[index].connect, _ENGINE)

    @asynccontextmanager
    async def _fresh(
        self,
        index: int,
        logicals: Collection[int],
        replica: Callable,
        primary: Callable,
        probe: _Probe,
        answers: FreshAnswers | None = None,
    ) -> AsyncIterator[Any]:
        wanted = sorted(set(logicals))
        if self._replica_dsn(index) != self.dsns[index]:
            # The primary's flushed WAL position and its fence, in one statement: the
            # fence as of a moment no later than that position. A commit is flushed
            # before it is visible (synchronous_commit), so a replica that replayed
            # this far holds every write committed before the read began.
            answer = await self._answer(index, answers)
            if not answer.held.issuperset(wanted):
                raise ShardMoved(wanted)
            attempt = AsyncExitStack()
            try:
                conn = await attempt.enter_async_context(replica())
                caught = await self._replayed(conn, answer.needed, probe)
            except (OSError, asyncpg.PostgresError, exc.DBAPIError, TimeoutError) as error:
                log.warning("a replica failed; its primary serves", extra={"shard": index, "error": repr(error)})
                caught = False
            except BaseException:  # cancelled while asking: the replica's connection goes back now, not at GC
                await attempt.aclose()
                raise
            if caught and self._trusted(answer):
                async with attempt:  # asked and read on one connection: behind a balancer, one replica
                    FRESH_READS.labels("replica").inc()
                    yield conn
                return
            await attempt.aclose()
            FRESH_READS.labels("primary").inc()
            async with primary() as conn:
                if not self._trusted(answer) and wanted and await probe.held(conn, wanted) != len(wanted):
                    raise ShardMoved(wanted)
                yield conn
            return
        async with primary() as conn:
            if wanted and await probe.held(conn, wanted) != len(wanted):
                raise ShardMoved(wanted)
            yield conn

    async def _answer(self, index: int, answers: FreshAnswers | None) -> FreshAnswer:
        """The request's answer from this primary while it is trusted, else a new one."""
        known = None if answers is None else answers.get(index)
        if known is not None and self._trusted(known):
            return known
        asked_at = time.monotonic()
        needed, held = await self._flushed(index)(None)
        answer = FreshAnswer(asked_at, needed, held)
        if answers is not None:
            answers[index] = answer
        return answer

    def _trusted(self, answer: FreshAnswer) -> bool:
        """Whether a read may start now on the strength of `answer`'s fence: a move's
        source keeps the rows it handed over for its grace period after the map
        changed, which must exceed the readers' USERS_SHARD_MAP_REFRESH_SECONDS (they
        act on a map that old too; the mover's default grace is ten of them), so a
        read that starts within one refresh interval of an answer that still named the
        shard reads them whole. Older (a long wait for a pooled connection, a
        request's round long after its first), the fence is asked again."""
        s = self._settings
        return time.monotonic() - answer.asked_at <= min(s.shard_map_refresh_seconds, s.shard_move_grace_seconds / 2)

    def _flushed(self, index: int) -> Coalescer[None, tuple[int, frozenset[int]]]:
        """The primary's flushed WAL position and the shards it holds. The fresh reads
        that wait meanwhile ask together (docs/decisions/0021): one round trip to the
        primary for many. A read never joins a question already on its way, so every
        answer is from after its read began, as its own would be."""
        return self.grouped(("flushed", index), lambda asked: self._ask_flushed(index, len(asked)))

    async def _ask_flushed(self, index: int, asked: int) -> list[tuple[int, frozenset[int]]]:
        async with self._raw(self.dsns[index]) as conn:
            needed, held = await conn.fetchrow(_FLUSHED_AND_HELD)
        return [(int(needed), frozenset(held))] * asked

    async def _replayed(self, conn: Any, needed: int, probe: _Probe) -> bool:
        if probe.remembers and conn.replayed_at_least(needed):
            return True
        deadline = time.monotonic() + self._settings.replica_max_wait
        while True:
            answer = await probe.replayed(conn)
            replayed = _NOT_IN_RECOVERY if answer is None else int(answer)  # None: a primary itself
            if probe.remembers:
                conn.note_replayed(replayed)
            if replayed >= needed:
                return True
            if time.monotonic() >= deadline:
                return False
            await asyncio.sleep(0.002)

    def grouped(self, key: Hashable, send: Callable[[list[Any]], Awaitable[list[Any]]]) -> Coalescer[Any, Any]:
        """The coalescer named `key`, made with `send` on first use: for statements that
        concurrent requests make to one database together (docs/decisions/0021)."""
        if key not in self._groups:
            self._groups[key] = Coalescer(send)
        return self._groups[key]

    def raw_primary(self, index: int) -> AbstractAsyncContextManager[asyncpg.Connection]:
        """A pooled asyncpg connection to database `index`'s primary, for writes of one
        statement each (each its own transaction), or in a transaction the caller opens
        (`conn.transaction()`: asyncpg rolls back one left open on its way back), and
        for the public reads made this way (`readers` are the primaries too)."""
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
                    connection_class=_RawConnection,
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
    """The raw pools run one statement at a time, each its own transaction, or a
    transaction their caller opens and ends (asyncpg rolls back one left open before
    this is called): no session state to undo, so no reset statement (a round trip)
    each time a connection goes back to its pool."""


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
