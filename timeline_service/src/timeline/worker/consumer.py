"""Consume, apply, then commit: offsets move only after the effect is in Redis.

Each partition's batch is applied in order (one user's events stay in order), in a task
of its own while the partition is paused; the other partitions keep fetching, so a
large fan-out on one partition does not hold up the rest. A failing event is retried
with backoff, then parked in the dead-letter topic with its error and origin, so it
never stalls its partition.
"""

from __future__ import annotations

import asyncio
import logging
import time

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import CommitFailedError, IllegalStateError
from prometheus_client import Counter, Gauge

from shared_schemas import codec, topics
from timeline.services.fanout import Fanout

log = logging.getLogger("timeline.worker")

EVENTS = Counter("timeline_events_total", "Events applied", ["topic"])
DEAD_LETTERS = Counter("timeline_dead_letters_total", "Events sent to the dead-letter topic", ["topic"])
LAG = Gauge("timeline_consumer_lag", "Messages behind the end of each partition", ["topic", "partition"])


class FinishBatchBeforeRevoke(ConsumerRebalanceListener):
    """A rebalance may take partitions away while their batches are being applied: hold
    the revocation until those batches are applied and committed, so the new owner
    starts right after them instead of applying them a second time."""

    def __init__(self, worker: "Worker") -> None:
        self.worker = worker

    async def on_partitions_revoked(self, revoked: list[TopicPartition]) -> None:
        await self.worker.drain(set(revoked))
        for tp in revoked:  # their lag is the new owner's to report now
            try:
                LAG.remove(tp.topic, str(tp.partition))
            except KeyError:
                pass

    async def on_partitions_assigned(self, assigned: list[TopicPartition]) -> None:
        log.info("partitions assigned", extra={"partitions": [f"{tp.topic}:{tp.partition}" for tp in assigned]})


class Worker:
    def __init__(self, consumer: AIOKafkaConsumer, producer: AIOKafkaProducer, fanout: Fanout,
                 max_retries: int, backoff_seconds: float) -> None:
        self.consumer, self.producer, self.fanout = consumer, producer, fanout
        self.max_retries, self.backoff = max_retries, backoff_seconds
        self.busy: dict[TopicPartition, asyncio.Task] = {}  # partitions with a batch in hand

    def subscribe(self) -> None:
        self.consumer.subscribe(list(topics.TIMELINE_SOURCES), listener=FinishBatchBeforeRevoke(self))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Short polls while batches are in hand, so a finished partition resumes soon.
            batches = await self.consumer.getmany(timeout_ms=50 if self.busy else 500, max_records=500)
            for tp, records in batches.items():
                self.consumer.pause(tp)  # one batch per partition at a time: order kept
                task = asyncio.create_task(self._partition(tp, records))
                self.busy[tp] = task
                task.add_done_callback(lambda _, tp=tp: self._finished(tp))
            await self._record_lag()
        await self.drain()  # SIGTERM: finish and commit what is in hand

    async def drain(self, partitions: set[TopicPartition] | None = None) -> None:
        tasks = [task for tp, task in self.busy.items() if partitions is None or tp in partitions]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, tp: TopicPartition) -> None:
        self.busy.pop(tp, None)
        if tp in self.consumer.assignment():
            self.consumer.resume(tp)

    async def _partition(self, tp: TopicPartition, records: list[ConsumerRecord]) -> None:
        try:
            for record in records:
                await self._apply(record)
        except Exception:  # noqa: BLE001 - e.g. the dead-letter topic itself unreachable
            # Nothing of this batch is committed: go back to its start and try again
            # after a pause (the handlers are idempotent).
            log.exception("batch failed; it will be fetched again", extra={"partition": f"{tp.topic}:{tp.partition}"})
            await asyncio.sleep(self.backoff * 2**self.max_retries)
            if tp in self.consumer.assignment():
                self.consumer.seek(tp, records[0].offset)
            return
        try:
            await self.consumer.commit({tp: records[-1].offset + 1})
        except (CommitFailedError, IllegalStateError) as exc:
            # The partition moved to another worker anyway (e.g. this one missed its
            # heartbeats): the new owner re-applies these events, which is harmless
            # because every handler is idempotent. Crashing here would only add a
            # second rebalance.
            log.warning("commit refused; partition reassigned", extra={"partition": f"{tp.topic}:{tp.partition}", "error": repr(exc)})

    async def _apply(self, record: ConsumerRecord) -> None:
        try:
            event = codec.decode(record.value)
        except (msgspec.DecodeError, msgspec.ValidationError) as exc:
            await self._dead_letter(record, f"undecodable event: {exc}")  # retrying cannot help
            return
        for attempt in range(self.max_retries + 1):
            try:
                await self.fanout.handle(event)
                EVENTS.labels(record.topic).inc()
                return
            except Exception as exc:  # noqa: BLE001 - any failure is retried, then parked
                if attempt == self.max_retries:
                    await self._dead_letter(record, repr(exc))
                    return
                log.warning("event failed; retrying", extra={"topic": record.topic, "offset": record.offset, "attempt": attempt + 1, "error": repr(exc)})
                await asyncio.sleep(self.backoff * 2**attempt)

    async def _dead_letter(self, record: ConsumerRecord, error: str) -> None:
        envelope = {
            "error": error, "topic": record.topic, "partition": record.partition, "offset": record.offset,
            "key": record.key.decode(errors="replace") if record.key else None,
            "value": record.value.decode(errors="replace") if record.value else None,
            "failed_at": time.time(),
        }
        await self.producer.send_and_wait(topics.TIMELINE_DEAD_LETTER.name, msgspec.json.encode(envelope), key=record.key)
        DEAD_LETTERS.labels(record.topic).inc()
        log.error("event dead-lettered", extra={k: v for k, v in envelope.items() if k != "value"})

    async def _record_lag(self) -> None:
        for tp in list(self.consumer.assignment()):
            end = self.consumer.highwater(tp)  # as of the last fetch; None before one
            if end is not None:
                try:
                    LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - await self.consumer.position(tp)))
                except IllegalStateError:
                    pass  # revoked since assignment() was read: no longer ours to report
