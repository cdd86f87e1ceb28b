"""Consume, apply, then commit: offsets move only after the effect is in Redis.

Each partition's batch is applied in order (one user's events stay in order), in a task
of its own while the partition is paused; the other partitions keep fetching, so a
large fan-out, or a store that is down for one partition's events, does not hold up
the rest.

What fails is retried or parked, never dropped (docs/decisions/0013):
- bytes that are no event (no value, too large, not JSON or UTF-8, an unknown type,
  wrong fields) can never be applied: they go to the dead-letter topic, verbatim, with
  the error and their origin in headers, and the partition moves on;
- anything else (a store or the Users API unreachable, a timeout, a 5xx) can pass: the
  event is tried again with capped exponential backoff for as long as it takes, its
  partition waiting, a log line and a metric per retry.
"""

from __future__ import annotations

import asyncio
import functools
import logging
import time
from collections.abc import Awaitable, Callable, Iterator
from typing import cast

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, ConsumerRebalanceListener, ConsumerRecord, TopicPartition
from aiokafka.errors import IllegalStateError
from prometheus_client import Counter, Gauge

from shared_schemas import codec, topics
from shared_schemas.coalesce import Coalescer
from shared_schemas.events import Event, TweetCreated
from timeline.adapters.users_client import FIRST_PAGES_AT_ONCE
from timeline.services.fanout import Fanout
from timeline.worker.retry import Backoff

log = logging.getLogger("timeline.worker")

EVENTS = Counter("timeline_events_total", "Events applied", ["topic"])
DEAD_LETTERS = Counter("timeline_dead_letters_total", "Events sent to the dead-letter topic", ["topic"])
RETRIES = Counter(
    "timeline_event_retries_total",
    "Failed attempts at an event (or a run of tweets) that will be tried again",
    ["topic"],
)
LAG = Gauge("timeline_consumer_lag", "Messages behind the end of each partition", ["topic", "partition"])
# How often the end of the partitions paused with a batch in hand is asked for: their
# fetches stop while paused, and with them aiokafka's news of their end (`highwater`), so
# a worker retrying an event while a store is down reported the lag of its last fetch.
LAG_LOOK_SECONDS = 5.0
# Every topic's series from the start, at 0: `increase()` over a series that appears
# with its first dead letter would not count that one (the dashboard's panel).
for _topic in topics.TIMELINE_SOURCES:
    DEAD_LETTERS.labels(_topic)
    RETRIES.labels(_topic)


def dead_letter_headers(record: ConsumerRecord, error: str) -> list[tuple[str, bytes]]:
    """Where a parked record came from and why, as Kafka Connect's dead-letter queues
    carry it: the value itself stays byte for byte what was consumed."""
    return [
        ("dlq.error", error.encode()),
        ("dlq.topic", record.topic.encode()),
        ("dlq.partition", str(record.partition).encode()),
        ("dlq.offset", str(record.offset).encode()),
        ("dlq.failed_at", f"{time.time():.3f}".encode()),
    ]


# Tweets created that follow one another in a partition are fanned out together, as
# many at most as the Users API's first pages of followers one request brings, and
# their deliveries go in one round trip to Redis. Under load a partition's backlog is
# long, and a tweet's fixed costs (a request, a round trip) are a good part of its
# fan-out (docs/decisions/0022).
TWEETS_AT_ONCE = FIRST_PAGES_AT_ONCE

# Records decoded, in the order of their partition: an event, or why the bytes are none.
Run = list[tuple[ConsumerRecord, Event | codec.Undecodable]]


def runs(records: list[ConsumerRecord], most: int) -> Iterator[Run]:
    """The records in order, decoded, in runs applied as one: tweets created that follow
    one another (up to `most`), anything else alone. Only a tweet's creation commutes
    with its neighbours (a push lands each id in order, once); a deletion or a follow
    must come after what precedes it, and does."""
    run: Run = []
    for record in records:
        event: Event | codec.Undecodable
        try:
            event = codec.decode(record.value)
        except codec.Undecodable as exc:
            event = exc
        if isinstance(event, TweetCreated) and run and isinstance(run[-1][1], TweetCreated) and len(run) < most:
            run.append((record, event))
            continue
        if run:
            yield run
        run = [(record, event)]
    if run:
        yield run


class FinishBatchBeforeRevoke(ConsumerRebalanceListener):
    """A rebalance may take partitions away while their batches are being applied: hold
    the revocation until the run each is applying is done and what was applied is
    committed, so the new owner starts right after it instead of applying it again."""

    def __init__(self, worker: Worker) -> None:
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
    def __init__(
        self,
        consumer: AIOKafkaConsumer,
        producer: AIOKafkaProducer,
        fanout: Fanout,
        backoff: Backoff,
        commit_timeout: float = 30.0,
    ) -> None:
        self.consumer, self.producer, self.fanout = consumer, producer, fanout
        self.backoff, self.commit_timeout = backoff, commit_timeout
        self.busy: dict[TopicPartition, asyncio.Task] = {}  # partitions with a batch in hand
        # Set when a partition's batch must stop waiting to retry (revoked, or SIGTERM):
        # what it has not applied is left uncommitted for the partition's next owner.
        self.leaving: dict[TopicPartition, asyncio.Event] = {}
        # The partitions whose batches finish while a commit is on its way are committed
        # together in the next: one request to the group coordinator for them all.
        self._commits = Coalescer(self._commit_together)
        self._ends: dict[TopicPartition, int] = {}  # paused partitions' ends, last asked for
        # The first offset of each batch in hand: behind the end too until it is applied.
        self.in_hand: dict[TopicPartition, int] = {}
        self._ends_at = 0.0  # when to ask again

    def subscribe(self) -> None:
        self.consumer.subscribe(list(topics.TIMELINE_SOURCES), listener=FinishBatchBeforeRevoke(self))

    async def run(self, stop: asyncio.Event) -> None:
        while not stop.is_set():
            # Short polls while batches are in hand, so a finished partition resumes soon.
            batches = await self.consumer.getmany(timeout_ms=50 if self.busy else 500, max_records=500)
            for tp, records in batches.items():
                self.consumer.pause(tp)  # one batch per partition at a time: order kept
                self.leaving[tp] = asyncio.Event()
                task = asyncio.create_task(self._partition(tp, records, self.leaving[tp]))
                self.busy[tp] = task
                self.in_hand[tp] = records[0].offset
                task.add_done_callback(functools.partial(self._finished, tp))
            await self._record_lag()
        await self.drain()  # SIGTERM: finish and commit what is in hand

    async def drain(self, partitions: set[TopicPartition] | None = None) -> None:
        """Let the batches in hand finish; one that is waiting to retry an event stops
        at once, and its partition's next owner starts from that event."""
        chosen = [tp for tp in self.busy if partitions is None or tp in partitions]
        for tp in chosen:
            self.leaving[tp].set()
        tasks = [self.busy[tp] for tp in chosen if tp in self.busy]
        if tasks:
            await asyncio.gather(*tasks, return_exceptions=True)

    def _finished(self, tp: TopicPartition, _task: asyncio.Task) -> None:
        self.busy.pop(tp, None)
        self.in_hand.pop(tp, None)
        self.leaving.pop(tp, None)
        if tp in self.consumer.assignment():
            self.consumer.resume(tp)

    async def _partition(self, tp: TopicPartition, records: list[ConsumerRecord], leaving: asyncio.Event) -> None:
        applied: int | None = None
        try:
            for run in runs(records, TWEETS_AT_ONCE):
                # Leaving (revoked, or SIGTERM): the rest is the next owner's, from the
                # commit below. Applied here it could land after the next owner applied
                # what follows it (a worker that lost its partition unawares, or whose
                # revocation outlasted the group's wait: a follow's backfill after the
                # unfollow), and a revocation waits for one run, not a batch of 500.
                if leaving.is_set():
                    break
                if not await self._apply(run, leaving):
                    # Given up while waiting to retry: fetch this run again, unless the
                    # partition is going (then its next owner starts from the commit).
                    if tp in self.consumer.assignment():
                        self.consumer.seek(tp, run[0][0].offset)
                    break
                applied = run[-1][0].offset
        finally:
            if applied is not None:
                await self._commit(tp, applied + 1)

    async def _commit(self, tp: TopicPartition, offset: int) -> None:
        try:
            await asyncio.wait_for(self._commits((tp, offset)), self.commit_timeout)
        except Exception as exc:  # noqa: BLE001 - a timeout included
            # The partition moved to another worker (this one missed its heartbeats), or
            # Kafka is unreachable: whoever reads these events next applies them again,
            # which is harmless because every handler is idempotent. Crashing would only
            # add a rebalance.
            log.warning(
                "commit failed; the events may be applied again",
                extra={"partition": f"{tp.topic}:{tp.partition}", "offset": offset, "error": repr(exc)},
            )

    async def _commit_together(self, commits: list[tuple[TopicPartition, int]]) -> list[None]:
        offsets: dict[TopicPartition, int] = {}
        for tp, offset in commits:
            offsets[tp] = max(offset, offsets.get(tp, offset))
        await self.consumer.commit(offsets)
        return [None] * len(commits)

    async def _apply(self, run: Run, leaving: asyncio.Event) -> bool:
        """Apply (or park) one run, retrying until it is done; False if the partition is
        leaving this worker before then."""
        record, first = run[0]
        if isinstance(first, codec.Undecodable):
            error = str(first)
            return await self._until_done(run, lambda: self._dead_letter(record, error), leaving)
        events = [cast(Event, event) for _, event in run]
        return await self._until_done(run, lambda: self._fan_out(record, events), leaving)

    async def _until_done(self, run: Run, attempt: Callable[[], Awaitable[None]], leaving: asyncio.Event) -> bool:
        record, last = run[0][0], run[-1][0]
        failures = 0
        while True:
            try:
                await attempt()
                return True
            except Exception as exc:  # noqa: BLE001 - it may pass: a store down, a timeout, a 5xx
                failures += 1
                delay = self.backoff.delay(failures)
                RETRIES.labels(record.topic).inc()
                log.warning(
                    "event failed; retrying",
                    extra={
                        "topic": record.topic,
                        "partition": record.partition,
                        "offset": record.offset,
                        "last_offset": last.offset,  # a run of tweets goes again whole
                        "attempt": failures,
                        "retry_in_s": round(delay, 3),
                        "error": repr(exc),
                    },
                )
            try:
                await asyncio.wait_for(leaving.wait(), delay)
                return False
            except TimeoutError:
                pass

    async def _fan_out(self, record: ConsumerRecord, events: list[Event]) -> None:
        if len(events) == 1:
            await self.fanout.handle(events[0])
        else:  # a run of tweets created (runs())
            await self.fanout.tweets_created(cast(list[TweetCreated], events))
        EVENTS.labels(record.topic).inc(len(events))

    async def _dead_letter(self, record: ConsumerRecord, error: str) -> None:
        await self.producer.send_and_wait(
            topics.TIMELINE_DEAD_LETTER.name, record.value, key=record.key, headers=dead_letter_headers(record, error)
        )
        DEAD_LETTERS.labels(record.topic).inc()
        log.error(
            "event dead-lettered",
            extra={"topic": record.topic, "partition": record.partition, "offset": record.offset, "error": error},
        )

    async def _record_lag(self) -> None:
        assigned = self.consumer.assignment()
        paused = [tp for tp in self.consumer.paused() if tp in assigned]
        self._ends = {tp: end for tp, end in self._ends.items() if tp in paused}
        if paused and time.monotonic() >= self._ends_at:
            self._ends_at = time.monotonic() + LAG_LOOK_SECONDS
            try:
                self._ends.update(await asyncio.wait_for(self.consumer.end_offsets(paused), 1.0))
            except Exception as exc:  # noqa: BLE001 - Kafka slow or down: asked again later
                log.debug("partition ends not read", extra={"error": repr(exc)})
        for tp in list(assigned):
            # A rebalance during the awaits below may take the next partitions away, and
            # aiokafka asserts on an unassigned one: look again before each.
            if tp not in self.consumer.assignment():
                continue
            end = self.consumer.highwater(tp)  # as of the last fetch; None before one
            if tp in self._ends:
                end = max(end or 0, self._ends[tp])
            if end is not None:
                if tp in self.in_hand:
                    position = self.in_hand[tp]
                else:
                    try:
                        position = await asyncio.wait_for(self.consumer.position(tp), 1.0)
                    except (TimeoutError, IllegalStateError):
                        continue  # revoked since assignment() was read, or no position yet
                LAG.labels(tp.topic, str(tp.partition)).set(max(0, end - position))
