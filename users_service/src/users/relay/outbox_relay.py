"""Drain each shard's outbox to Kafka: lock, take a batch, apply, publish, delete."""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Awaitable, Callable

import asyncpg
from aiokafka import AIOKafkaProducer
from aiokafka.errors import (
    InvalidProducerEpoch,
    OutOfOrderSequenceNumber,
    ProducerFenced,
    UnknownProducerId,
)
from prometheus_client import Counter, Gauge, Histogram

from users.adapters import catalog, outbox_repo
from users.adapters.db import ShardedDatabase

log = logging.getLogger("users.relay")

PUBLISHED = Counter("outbox_published_total", "Outbox events acknowledged by Kafka", ["shard"])
BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published", ["shard"])
BATCH_SECONDS = Histogram("outbox_relay_batch_seconds", "Time to publish one outbox batch", ["shard"])
# From the commit of the change to Kafka's acknowledgement: the relay's share of the
# delay between POST /tweet and the tweet reaching timelines.
PUBLISH_DELAY = Histogram(
    "outbox_publish_delay_seconds",
    "Outbox row age when Kafka acknowledged it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class ProducerStuck(Exception):
    """Kafka acknowledged none of a batch's remaining rows in time. aiokafka asks only
    the brokers its metadata names for new metadata: a producer that learned the
    cluster while one broker alone was up (every broker restarted) knows only that one,
    and once it dies, retries it for ever (seen in the fault suite)."""


# Errors after which a producer never sends again (aiokafka's sender routine ends, the
# broker no longer knows its id, or it knows no live broker): only a new producer,
# which starts from every bootstrap server, gets on.
PRODUCER_BROKEN = (OutOfOrderSequenceNumber, UnknownProducerId, InvalidProducerEpoch, ProducerFenced, ProducerStuck)

# What must be done with a batch before its events go out: the ids of the rows it could
# not do now (they wait in the outbox, and every later row of their keys with them).
BatchStep = Callable[[list[outbox_repo.OutboxRow]], Awaitable[set[int]]]


def ready_rows(rows: list[outbox_repo.OutboxRow], waiting: set[int]) -> list[outbox_repo.OutboxRow]:
    """The rows that may go now: all but the waiting ones and, behind each, every later
    row of its key (one user's events stay in their order)."""
    held: set[str] = set()
    ready = []
    for row in rows:
        if row.id in waiting:
            held.add(row.key)
        if row.key not in held:
            ready.append(row)
    return ready


class OutboxRelay:
    def __init__(
        self,
        db: ShardedDatabase,
        producer: AIOKafkaProducer,
        batch_size: int,
        poll_seconds: float,
        connect_timeout: float = 5.0,
        before_publish: BatchStep | None = None,
        linger_seconds: float = 0.0,
        new_producer: Callable[[], AIOKafkaProducer] | None = None,
        ack_timeout: float = 15.0,
        held_seconds: float = 5.0,
    ) -> None:
        """`before_publish`: what must be done with a batch before its events go out (the
        follow graph's second half); it runs again if the relay dies before the rows are
        deleted, so it must be idempotent. The keys of rows it could not do are left
        out of the next batches for `held_seconds`, then tried again."""
        self.db, self.producer, self.before_publish = db, producer, before_publish
        # A producer whose idempotence state broke (below) is replaced by a new one.
        self.new_producer = new_producer
        self.ack_timeout = ack_timeout  # a batch not acknowledged by then: ProducerStuck
        self._renewing = asyncio.Lock()
        self.batch_size, self.poll_seconds = batch_size, poll_seconds
        # After a NOTIFY, wait this long before taking the batch: under load the rows of
        # several commits go out in one pass (a transaction, a lock, a select, a delete
        # and a Kafka request each), for that much more delay (docs/decisions/0018).
        self.linger_seconds = linger_seconds
        self.connect_timeout = connect_timeout
        self.listeners: dict[int, asyncpg.Connection] = {}
        self.wakeup = asyncio.Event()
        self.notified: set[int] = set()  # shards whose NOTIFY arrived since the last pass
        self._unheard: set[int] = set()  # shards that could not be listened to, said once
        self._listening: asyncio.Task[None] | None = None
        self.held_seconds = held_seconds
        # Per database: the keys whose rows wait, and until when batches pass them by
        # (a batch of nothing but waiting rows would hold every other row up).
        self.held: dict[int, tuple[frozenset[str], float]] = {}
        self.failing: dict[int, int] = {}  # databases whose passes failed, how many in a row

    async def drain_shard(self, shard: int) -> int:
        """Publish one batch of `shard`'s outbox; returns how many rows went out."""
        started = time.perf_counter()
        async with self.db.raw_primary(shard) as conn, conn.transaction():
            if not await outbox_repo.try_lock_shard(conn):
                return 0  # another relay owns this shard right now
            keys, until = self.held.get(shard, (frozenset(), 0.0))
            skip = keys if time.monotonic() < until else frozenset()
            rows = await outbox_repo.take_batch(conn, self.batch_size, skip)
            if not rows:
                BACKLOG.labels(shard).set(0)
                return 0
            waiting = await self.before_publish(rows) if self.before_publish is not None else set()
            ready = ready_rows(rows, waiting) if waiting else rows
            if waiting:
                held = skip | {row.key for row in rows if row.id in waiting}
                self.held[shard] = (held, time.monotonic() + self.held_seconds)
                log.warning(
                    "events wait for a database that cannot be reached; the others go out",
                    extra={"shard": shard, "waiting": len(rows) - len(ready), "keys": len(held)},
                )
            elif not skip:
                self.held.pop(shard, None)  # tried again, and done: nothing waits
            producer = self.producer
            acked, error = await self.publish(ready, producer)
            if acked:
                await outbox_repo.delete(conn, [row.id for row in ready[:acked]])
            acked_at = time.time()
            for row in ready[:acked]:
                PUBLISH_DELAY.observe(max(0.0, acked_at - row.created_at.timestamp()))
            if error is not None:
                log.warning(
                    "kafka refused part of a batch; the rest stays for the next pass",
                    extra={"shard": shard, "kept": len(ready) - acked, "error": repr(error)},
                )

            # What is still owed. A short batch took every row its snapshot could see, so
            # only refused rows remain: the table is counted (a query) only after a full one.
            full = len(rows) >= self.batch_size
            owed = len(rows) - acked
            BACKLOG.labels(shard).set(await outbox_repo.backlog(conn) if full or skip else owed)
        if isinstance(error, PRODUCER_BROKEN):  # after the commit: the acknowledged rows are gone
            await self.renew_producer(producer, error)
        PUBLISHED.labels(shard).inc(acked)
        BATCH_SECONDS.labels(shard).observe(time.perf_counter() - started)
        return acked if error is None else 0  # a refused row: no "full batch" hurry

    async def renew_producer(self, broken: AIOKafkaProducer, error: BaseException) -> None:
        """Replace a producer that can never send again. Its idempotence state broke:
        the brokers lost the tail of a partition it had written (every replica killed
        at once, before a flush) and now refuse its next sequence number for good
        (aiokafka's sender stops on OutOfOrderSequenceNumber). A new producer gets a new
        producer id; the rows it could not send are still in the outbox."""
        if self.new_producer is None:
            return
        async with self._renewing:
            if self.producer is not broken:
                return  # another shard's pass renewed it already
            fresh = self.new_producer()
            try:
                await fresh.start()
            except BaseException:
                await fresh.stop()
                raise
            self.producer = fresh
        log.warning("kafka producer replaced after a fatal error", extra={"error": repr(error)})
        try:
            await asyncio.wait_for(broken.stop(), 10)
        except Exception as exc:  # noqa: BLE001 - it is broken: let it go
            log.info("the broken producer did not stop cleanly", extra={"error": repr(exc)})

    async def publish(
        self, rows: list[outbox_repo.OutboxRow], producer: AIOKafkaProducer | None = None
    ) -> tuple[int, BaseException | None]:
        """Send `rows` in their order: how many from the first on Kafka acknowledged,
        and the first failure. Only that prefix leaves the outbox: a row after a
        failed one stays (even if it went out) and goes again after it on the next
        pass, so a user's later event never becomes the last word before an earlier
        one (a delete overtaking its tweet)."""
        producer = producer or self.producer
        sends: list[asyncio.Future] = []
        error: BaseException | None = None
        for row in rows:
            try:
                sends.append(await producer.send(row.topic, row.payload, key=row.key.encode()))
            except Exception as exc:  # noqa: BLE001 - e.g. no metadata: the broker is down
                error = exc
                break
        if sends:
            await asyncio.wait(sends, timeout=self.ack_timeout)
        acked = 0
        for sent in sends:
            if not sent.done():
                error = ProducerStuck(f"not acknowledged in {self.ack_timeout:g} s")  # the first row left decides
                break
            if sent.exception() is not None:
                error = sent.exception()
                break
            acked += 1
        for sent in sends:  # the failures after the first are retrieved too (no warnings)
            if sent.done() and not sent.cancelled():
                sent.exception()
        return acked, error

    async def drain(self, shards: list[int]) -> list[int]:
        """One batch of each of `shards`: the shards whose batch came back full (more
        rows may be waiting there). A database that fails its pass is tried again at
        the next sweep; the others go on as ever meanwhile (one database down holds up
        no other's rows)."""
        outcomes = await asyncio.gather(*(self.drain_shard(i) for i in shards), return_exceptions=True)
        full = []
        for shard, outcome in zip(shards, outcomes):
            if isinstance(outcome, BaseException):
                if not isinstance(outcome, Exception):
                    raise outcome  # cancelled: the relay is stopping
                self._failed(shard, outcome)
                continue
            if self.failing.pop(shard, 0):
                log.info("a database's relay passes succeed again", extra={"shard": shard})
            if outcome >= self.batch_size:
                full.append(shard)
        return full

    def _failed(self, shard: int, error: Exception) -> None:
        """The traceback once an outage, then one line a pass."""
        failures = self.failing[shard] = self.failing.get(shard, 0) + 1
        if failures == 1:
            log.error("a database's relay pass failed; retrying", extra={"shard": shard}, exc_info=error)
        else:
            log.warning(
                "a database's relay pass failed again; retrying",
                extra={"shard": shard, "failed_passes": failures, "error": repr(error)},
            )

    def every(self) -> list[int]:
        """Every database's outbox, those the shard map gained since the start included
        (a move hands its undelivered rows to the target's outbox)."""
        return list(range(len(self.db.primaries)))

    def _notify(self, shard: int) -> None:
        self.notified.add(shard)
        self.wakeup.set()

    async def listen(self) -> None:
        """LISTEN on every shard whose listening connection is missing or lost (the
        database restarted): a commit that wrote an outbox row wakes the relay. The
        shards at once, each within USERS_DB_CONNECT_TIMEOUT_SECONDS; one that cannot
        be reached now is tried again at the next sweep, which finds its rows meanwhile.
        A database the shard map gained since is listened to too."""
        await asyncio.gather(*(self._listen(shard, dsn) for shard, dsn in list(self.db.dsns.items())))

    async def _listen(self, shard: int, dsn: str) -> None:
        known = self.listeners.get(shard)
        if known is not None and not known.is_closed():
            return
        conn = None
        try:
            conn = await asyncpg.connect(catalog.plain_dsn(dsn), timeout=self.connect_timeout)
            await conn.add_listener(outbox_repo.CHANNEL, lambda *_, shard=shard: self._notify(shard))
        except Exception as exc:  # noqa: BLE001 - the database is down: the sweeps find its rows
            if conn is not None:  # connected, then lost: not left open
                conn.terminate()
            if shard not in self._unheard:  # once an outage, not once a sweep
                log.warning("cannot listen to a shard; polling it", extra={"shard": shard, "error": repr(exc)})
            self._unheard.add(shard)
            return
        self._unheard.discard(shard)
        self.listeners[shard] = conn
        self._notify(shard)  # rows may have come while nobody listened

    def _listen_again(self) -> None:
        """`listen` in the background: a database that hangs on connect holds up
        nobody's rows (the sweep goes on), and a second one is not started meanwhile."""
        if self._listening is None or self._listening.done():
            self._listening = asyncio.create_task(self.listen())

    async def close(self) -> None:
        if self._listening is not None and not self._listening.done():
            self._listening.cancel()
            await asyncio.gather(self._listening, return_exceptions=True)
        for conn in self.listeners.values():
            conn.terminate() if conn.is_closed() else await conn.close()

    async def run(self, stop: asyncio.Event) -> None:
        """Drain the shards a NOTIFY named, every shard once a poll interval (a missed
        notification, another relay's leftovers, a shard that was down, one whose
        listening connection was lost), and a shard again at once while its batches
        come back full."""
        shards = self.every()
        failures = 0  # passes failed in a row
        # The sweep comes round on the clock, NOTIFYs or not: a database whose listener
        # was lost wakes nobody, and other databases' commits, each waking the relay
        # sooner than the interval, kept it from ever being swept (a test showed it).
        sweep_at = time.monotonic() + self.poll_seconds
        while not stop.is_set():
            if time.monotonic() >= sweep_at:
                shards = self.every()
                self._listen_again()
                sweep_at = time.monotonic() + self.poll_seconds
            self.wakeup.clear()
            shards = sorted(set(shards) | self.notified)
            self.notified.clear()
            try:
                shards = await self.drain(shards)
                if failures:
                    log.info("relay passes succeed again", extra={"failed_passes": failures})
                    failures = 0
                if shards:
                    continue  # full batches: more is waiting there
            except Exception as exc:
                # A shard or Kafka unreachable: nothing was deleted that was not
                # acknowledged; try every shard again after the poll interval. The
                # traceback once per outage, then one line a pass.
                if not failures:
                    log.exception("relay pass failed; retrying")
                else:
                    log.warning(
                        "relay pass failed again; retrying", extra={"failed_passes": failures + 1, "error": repr(exc)}
                    )
                failures += 1
                shards = self.every()
                await asyncio.sleep(self.poll_seconds)
                continue
            waits = {asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())}
            await asyncio.wait(
                waits, timeout=max(0.0, sweep_at - time.monotonic()), return_when=asyncio.FIRST_COMPLETED
            )
            for task in waits:
                task.cancel()
            if self.wakeup.is_set() and self.linger_seconds > 0 and not stop.is_set():
                await asyncio.sleep(self.linger_seconds)
