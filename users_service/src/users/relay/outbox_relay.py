"""Drain each shard's outbox to Kafka: lock, take a batch, apply, publish, delete."""

from __future__ import annotations

import asyncio
import logging
import time

import asyncpg
from aiokafka import AIOKafkaProducer
from prometheus_client import Counter, Gauge, Histogram

from users.adapters import outbox_repo
from users.adapters.db import ShardedDatabase
from users.relay import follow_edges

log = logging.getLogger("users.relay")

PUBLISHED = Counter("outbox_published_total", "Outbox events acknowledged by Kafka", ["shard"])
BACKLOG = Gauge("outbox_backlog", "Outbox rows not yet published", ["shard"])
BATCH_SECONDS = Histogram("outbox_relay_batch_seconds", "Time to publish one outbox batch", ["shard"])
# From the commit of the change to Kafka's acknowledgement: the relay's share of the
# delay between POST /tweet and the tweet reaching timelines.
PUBLISH_DELAY = Histogram(
    "outbox_publish_delay_seconds", "Outbox row age when Kafka acknowledged it",
    buckets=(0.005, 0.01, 0.025, 0.05, 0.1, 0.25, 0.5, 1, 2.5, 5, 10, 30),
)


class OutboxRelay:
    def __init__(self, db: ShardedDatabase, producer: AIOKafkaProducer, batch_size: int, poll_seconds: float) -> None:
        self.db, self.producer = db, producer
        self.batch_size, self.poll_seconds = batch_size, poll_seconds
        self.wakeup = asyncio.Event()
        self.notified: set[int] = set()  # shards whose NOTIFY arrived since the last pass

    async def drain_shard(self, shard: int) -> int:
        """Publish one batch of `shard`'s outbox; returns how many rows went out."""
        started = time.perf_counter()
        async with self.db.primaries[shard].begin() as conn:
            if not await outbox_repo.try_lock_shard(conn):
                return 0  # another relay owns this shard right now
            rows = await outbox_repo.take_batch(conn, self.batch_size)
            if not rows:
                BACKLOG.labels(shard).set(0)
                return 0
            await follow_edges.apply(self.db, rows)
            sends = [await self.producer.send(topic, payload, key=key.encode()) for _, topic, key, payload, _ in rows]
            results = await asyncio.gather(*sends, return_exceptions=True)
            delivered = [row for row, result in zip(rows, results) if not isinstance(result, BaseException)]
            acked = [row[0] for row in delivered]
            if acked:
                await outbox_repo.delete(conn, acked)
            acked_at = time.time()
            for row in delivered:
                PUBLISH_DELAY.observe(max(0.0, acked_at - row[4].timestamp()))
            if len(acked) < len(rows):
                error = next(r for r in results if isinstance(r, BaseException))
                log.warning("kafka refused part of a batch", extra={"shard": shard, "failed": len(rows) - len(acked), "error": repr(error)})
            # What is still owed. A short batch took every row its snapshot could see, so
            # only refused rows remain; counting the table each time was one more query
            # per batch, and at a hundred tweets a second most batches are one row.
            full = len(rows) >= self.batch_size
            BACKLOG.labels(shard).set(await outbox_repo.backlog(conn) if full else len(rows) - len(acked))
        PUBLISHED.labels(shard).inc(len(acked))
        BATCH_SECONDS.labels(shard).observe(time.perf_counter() - started)
        return len(acked)

    async def drain(self, shards: list[int]) -> list[int]:
        """One batch of each of `shards`: the shards whose batch came back full (more
        rows may be waiting there)."""
        counts = await asyncio.gather(*(self.drain_shard(i) for i in shards))
        return [shard for shard, count in zip(shards, counts) if count >= self.batch_size]

    def _notify(self, shard: int) -> None:
        self.notified.add(shard)
        self.wakeup.set()

    async def listen(self, dsns: list[str]) -> list[asyncpg.Connection]:
        """LISTEN on every shard: a commit that wrote an outbox row wakes the relay."""
        connections = []
        for shard, dsn in enumerate(dsns):
            conn = await asyncpg.connect(dsn.replace("postgresql+asyncpg://", "postgresql://"))
            await conn.add_listener(outbox_repo.CHANNEL, lambda *_, shard=shard: self._notify(shard))
            connections.append(conn)
        return connections

    async def run(self, stop: asyncio.Event) -> None:
        """Drain the shards a NOTIFY named, every shard when the poll interval passes
        without one (a missed notification, another relay's leftovers), and a shard
        again at once while its batches come back full. It used to drain every shard on
        any NOTIFY and then again to find them empty: four transactions per tweet at a
        hundred tweets a second with two shards (docs/benchmarks.md)."""
        every = list(range(len(self.db.primaries)))
        shards = every
        while not stop.is_set():
            self.wakeup.clear()
            shards = sorted(set(shards) | self.notified)
            self.notified.clear()
            try:
                shards = await self.drain(shards)
                if shards:
                    continue  # full batches: more is waiting there
            except Exception:
                log.exception("relay pass failed; retrying")
                shards = every
                await asyncio.sleep(self.poll_seconds)
                continue
            waits = {asyncio.ensure_future(self.wakeup.wait()), asyncio.ensure_future(stop.wait())}
            _, pending = await asyncio.wait(waits, timeout=self.poll_seconds, return_when=asyncio.FIRST_COMPLETED)
            for task in waits:
                task.cancel()
            if not self.wakeup.is_set():  # the poll interval passed without a NOTIFY
                shards = every
