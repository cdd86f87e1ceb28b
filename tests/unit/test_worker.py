"""The worker's retry and dead-letter policy, against fakes of Kafka's consumer and
producer and of the stores: what can pass is retried until it does, what never can is
parked verbatim, and the offset moves only past what was applied or parked."""

from __future__ import annotations

import asyncio

import pytest
from aiokafka import ConsumerRecord, TopicPartition
from prometheus_client import REGISTRY

from shared_schemas import codec, topics
from shared_schemas.events import Event, TweetDeleted
from shared_schemas.ids import new_id, utcnow
from tests.unit.services import world
from timeline.worker.consumer import RETRIES, Worker, runs
from timeline.worker.retry import Backoff

TP = TopicPartition(topics.TWEETS.name, 0)


class FakeConsumer:
    def __init__(self) -> None:
        self.committed: dict[TopicPartition, int] = {}
        self.seeks: list[int] = []

    def assignment(self) -> set[TopicPartition]:
        return {TP}

    async def commit(self, offsets: dict[TopicPartition, int]) -> None:
        self.committed.update(offsets)

    def seek(self, tp: TopicPartition, offset: int) -> None:
        self.seeks.append(offset)

    def paused(self) -> set[TopicPartition]:
        return set()


class FakeProducer:
    def __init__(self, down: int = 0) -> None:
        self.sent: list[tuple[str, bytes | None, bytes | None, dict]] = []
        self.down = down

    async def send_and_wait(self, topic, value, key=None, headers=None):
        if self.down:
            self.down -= 1
            raise ConnectionError("kafka unreachable")
        self.sent.append((topic, value, key, dict(headers or [])))


def _record(offset: int, value: bytes | None, key: bytes = b"k") -> ConsumerRecord:
    return ConsumerRecord(TP.topic, TP.partition, offset, 0, 0, key, value, None, 0, 0, [])


def _worker(fanout, producer=None) -> tuple[Worker, FakeConsumer, FakeProducer]:
    consumer, producer = FakeConsumer(), producer or FakeProducer()
    return Worker(consumer, producer, fanout, Backoff(0.001, 0.004)), consumer, producer


def _retries() -> float:
    return RETRIES.labels(TP.topic)._value.get()


async def test_records_that_are_no_event_are_parked_verbatim_and_the_partition_moves_on() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    await w.timeline(reader)
    behind = w.tweet_event(author)
    poison = [None, b"\xff\xfe", b'{"type": "tweet.exploded"}', b"{" + b" " * codec.MAX_EVENT_BYTES + b"}"]
    records = [_record(i, value) for i, value in enumerate(poison)] + [_record(4, codec.encode(behind))]
    worker, consumer, producer = _worker(w.fanout)
    await worker._partition(TP, records, asyncio.Event())
    assert [value for _, value, _, _ in producer.sent] == poison  # byte for byte, a tombstone too
    assert all(h["dlq.topic"] == TP.topic.encode() and h["dlq.error"] for _, _, _, h in producer.sent)
    assert [h["dlq.offset"] for _, _, _, h in producer.sent] == [b"0", b"1", b"2", b"3"]
    assert await w.timeline(reader) == [behind.tweet_id]  # the event behind them is applied
    assert consumer.committed == {TP: 5}


async def test_a_store_that_is_down_is_waited_for_and_nothing_is_parked() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    await w.timeline(reader)
    events = [w.tweet_event(author) for _ in range(3)]
    w.users.down = 25  # many failed attempts in a row: more than any fixed budget
    before = _retries()
    worker, consumer, producer = _worker(w.fanout)
    await worker._partition(TP, [_record(i, codec.encode(e)) for i, e in enumerate(events)], asyncio.Event())
    # The three are one run: each attempt asks for three authors' followers, and fails
    # while any of them does (25 failed asks: nine attempts).
    assert producer.sent == [] and w.users.down == 0 and _retries() - before == 9
    assert await w.timeline(reader) == [e.tweet_id for e in events[::-1]]
    assert consumer.committed == {TP: 3}


async def test_tweets_in_a_row_go_together_and_whatever_else_keeps_its_place() -> None:
    w = world(threshold=3)
    author, star, reader = w.users.add_user("a"), w.users.add_user("s"), w.users.add_user("r")
    for fan in (reader, *(w.users.add_user(f"f{i}") for i in range(2))):
        w.users.follow(fan, star)  # a celebrity among the run's tweets: kept once, merged
    w.users.follow(reader, author)
    await w.timeline(reader)
    first, starred, second = w.tweet_event(author), w.tweet_event(star), w.tweet_event(author)
    del w.users.tweets[first.tweet_id]
    deleted = TweetDeleted(event_id=new_id(), occurred_at=utcnow(), tweet_id=first.tweet_id, author_id=author)
    third = w.tweet_event(author)
    events: list[Event] = [first, starred, second, deleted, third]
    records = [_record(i, codec.encode(e)) for i, e in enumerate(events)] + [_record(5, b"null")]
    assert [[r.offset for r, _ in run] for run in runs(records, 32)] == [[0, 1, 2], [3], [4], [5]]
    assert [[r.offset for r, _ in run] for run in runs(records[:3], 2)] == [[0, 1], [2]]
    worker, consumer, producer = _worker(w.fanout)
    await worker._partition(TP, records, asyncio.Event())
    # The deletion came after the tweet it deletes, and took it away.
    assert await w.timeline(reader) == [third.tweet_id, second.tweet_id, starred.tweet_id]
    assert consumer.committed == {TP: 6} and len(producer.sent) == 1


async def test_a_batch_waiting_to_retry_stops_when_its_partition_leaves_and_commits_what_was_applied() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    await w.timeline(reader)
    second = w.tweet_event(author)
    worker, consumer, producer = _worker(w.fanout)
    w.users.down = 10**9  # down for good, as far as this worker is concerned
    leaving = asyncio.Event()
    task = asyncio.create_task(worker._partition(TP, [_record(0, b"null"), _record(1, codec.encode(second))], leaving))
    await asyncio.sleep(0.05)
    assert not task.done()  # still retrying the event at offset 1
    leaving.set()  # revoked, or SIGTERM
    await asyncio.wait_for(task, 1)
    assert consumer.committed == {TP: 1} and consumer.seeks == [1]  # the next owner starts at 1
    assert len(producer.sent) == 1  # offset 0 ("null", no event) was parked; 1 was not


async def test_a_partition_that_leaves_mid_batch_stops_after_the_run_in_hand_and_commits_it() -> None:
    # A worker that keeps applying a revoked partition's batch may apply a follow after
    # the next owner applied its unfollow: the follower's home keeps the author's tweets.
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    await w.timeline(reader)
    first, gone, third = w.tweet_event(author), w.tweet_event(author), w.tweet_event(author)
    deleted = TweetDeleted(event_id=new_id(), occurred_at=utcnow(), tweet_id=gone.tweet_id, author_id=author)
    records = [_record(i, codec.encode(e)) for i, e in enumerate([first, deleted, third])]  # three runs
    worker, consumer, _ = _worker(w.fanout)
    leaving, applied = asyncio.Event(), []
    fan_out = worker._fan_out

    async def revoked_meanwhile(record, events):
        applied.append(record.offset)
        leaving.set()  # the rebalance comes while the first run is applied
        await fan_out(record, events)

    worker._fan_out = revoked_meanwhile  # type: ignore[method-assign]
    await worker._partition(TP, records, leaving)
    assert applied == [0] and consumer.committed == {TP: 1}  # the next owner starts at 1
    assert await w.timeline(reader) == [first.tweet_id]


async def test_the_dead_letter_topic_unreachable_is_retried_too() -> None:
    w = world()
    worker, consumer, producer = _worker(w.fanout, FakeProducer(down=3))
    await worker._partition(TP, [_record(0, b"not json")], asyncio.Event())
    assert len(producer.sent) == 1 and consumer.committed == {TP: 1}


@pytest.mark.parametrize("attempt", [1, 2, 5, 40])
def test_the_backoff_doubles_up_to_its_cap_with_jitter(attempt: int) -> None:
    backoff = Backoff(0.2, 30)
    base = min(30, 0.2 * 2 ** (attempt - 1))
    assert all(0.75 * base <= backoff.delay(attempt) <= 1.25 * base for _ in range(50))


async def test_a_rebalance_while_the_lag_is_read_does_not_stop_the_worker() -> None:
    # Partitions taken away by a rebalance between the reads of the lag: aiokafka
    # asserts on an unassigned partition, which once ended the worker.
    first, second = TopicPartition(topics.TWEETS.name, 0), TopicPartition(topics.TWEETS.name, 1)

    class Rebalancing(FakeConsumer):
        def __init__(self) -> None:
            super().__init__()
            self.assigned = {first, second}

        def assignment(self) -> set[TopicPartition]:
            return set(self.assigned)

        def highwater(self, tp: TopicPartition) -> int:
            assert tp in self.assigned, "Partition is not assigned"
            return 10

        async def position(self, tp: TopicPartition) -> int:
            self.assigned = {tp}  # the other one is revoked meanwhile
            return 4

    worker = Worker(Rebalancing(), FakeProducer(), world().fanout, Backoff(0.001, 0.004))
    await worker._record_lag()  # no AssertionError


async def test_a_partition_paused_with_a_batch_in_hand_reports_what_came_since_its_last_fetch() -> None:
    # Its fetches stop while it retries an event (a store down): aiokafka's highwater
    # stays where its last fetch left it, and the lag read flat through the outage.
    class Retrying(FakeConsumer):
        def paused(self) -> set[TopicPartition]:
            return {TP}

        def highwater(self, tp: TopicPartition) -> int:
            return 10  # as of the last fetch

        async def position(self, tp: TopicPartition) -> int:
            return 4

        async def end_offsets(self, partitions: list[TopicPartition]) -> dict[TopicPartition, int]:
            return {tp: 25 for tp in partitions}  # fifteen posted since

    worker = Worker(Retrying(), FakeProducer(), world().fanout, Backoff(0.001, 0.004))
    await worker._record_lag()
    labels = {"topic": TP.topic, "partition": str(TP.partition)}
    assert REGISTRY.get_sample_value("timeline_consumer_lag", labels) == 21
    worker.in_hand[TP] = 2  # a batch from offset 2 in hand, not applied yet: behind too
    await worker._record_lag()
    assert REGISTRY.get_sample_value("timeline_consumer_lag", labels) == 23


async def test_partitions_that_finish_while_a_commit_is_on_its_way_are_committed_together() -> None:
    class SlowConsumer(FakeConsumer):
        def __init__(self) -> None:
            super().__init__()
            self.calls: list[dict[TopicPartition, int]] = []
            self.answer = asyncio.Event()

        async def commit(self, offsets: dict[TopicPartition, int]) -> None:
            self.calls.append(dict(offsets))
            await self.answer.wait()
            await super().commit(offsets)

    consumer = SlowConsumer()
    worker = Worker(consumer, FakeProducer(), world().fanout, Backoff(0.001, 0.004))
    others = [TopicPartition(topics.TWEETS.name, p) for p in (1, 2)]
    first = asyncio.create_task(worker._commit(TP, 4))
    await asyncio.sleep(0)  # its request is on its way
    waiting = [asyncio.create_task(worker._commit(tp, offset)) for tp, offset in zip(others, (7, 9), strict=True)]
    waiting.append(asyncio.create_task(worker._commit(others[0], 8)))  # the same partition again: its furthest
    await asyncio.sleep(0.01)
    consumer.answer.set()
    await asyncio.wait_for(asyncio.gather(first, *waiting), 1)
    assert consumer.calls == [{TP: 4}, {others[0]: 8, others[1]: 9}]
    assert consumer.committed == {TP: 4, others[0]: 8, others[1]: 9}
