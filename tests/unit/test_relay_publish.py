"""The relay's rule for a batch, against a fake producer: only the acknowledged prefix
leaves the outbox, so a user's later event never overtakes an earlier one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from aiokafka.errors import OutOfOrderSequenceNumber

from users.adapters.outbox_repo import OutboxRow
from users.relay.outbox_relay import PRODUCER_BROKEN, OutboxRelay, ProducerStuck, ready_rows


class FakeProducer:
    """Acknowledges every send except those named: refused when queued, or failed when
    acknowledged."""

    def __init__(
        self, refuse_queued: set[int] = frozenset(), fail_ack: set[int] = frozenset(), never_ack: set[int] = frozenset()
    ) -> None:
        self.refuse_queued, self.fail_ack, self.never_ack = refuse_queued, fail_ack, never_ack
        self.queued: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        n = int(value)
        if n in self.refuse_queued:
            raise TimeoutError("no metadata")
        self.queued.append(value)
        ack = asyncio.get_running_loop().create_future()
        if n in self.fail_ack:
            ack.set_exception(TimeoutError("no acknowledgement"))
        elif n in self.never_ack:
            pass  # retried for ever, to a broker nobody else knows is gone
        else:
            ack.set_result(None)
        return ack


def _rows(n: int) -> list[OutboxRow]:
    now = datetime.now(UTC)
    return [OutboxRow(i, "tweets.v1", "user", str(i).encode(), now) for i in range(n)]


async def test_every_row_acknowledged_leaves_the_outbox() -> None:
    acked, error = await OutboxRelay(None, FakeProducer(), 500, 1.0).publish(_rows(4))
    assert (acked, error) == (4, None)


async def test_a_failed_acknowledgement_keeps_that_row_and_every_later_one() -> None:
    producer = FakeProducer(fail_ack={1})
    acked, error = await OutboxRelay(None, producer, 500, 1.0).publish(_rows(4))
    assert acked == 1 and isinstance(error, TimeoutError)  # rows 1, 2, 3 stay (2 and 3 went out: sent again)


async def test_a_send_refused_when_queued_stops_the_batch_there() -> None:
    producer = FakeProducer(refuse_queued={2})
    acked, error = await OutboxRelay(None, producer, 500, 1.0).publish(_rows(4))
    assert acked == 2 and isinstance(error, TimeoutError)
    assert producer.queued == [b"0", b"1"]  # nothing after the refused row went out


async def test_a_batch_never_acknowledged_keeps_its_rows_and_says_the_producer_is_stuck() -> None:
    producer = FakeProducer(never_ack={2})
    acked, error = await OutboxRelay(None, producer, 500, 1.0, ack_timeout=0.1).publish(_rows(4))
    assert acked == 2 and isinstance(error, ProducerStuck)
    assert isinstance(error, PRODUCER_BROKEN), "a stuck producer is replaced like a broken one"


class StartStopProducer(FakeProducer):
    def __init__(self) -> None:
        super().__init__()
        self.started = self.stopped = False

    async def start(self) -> None:
        self.started = True

    async def stop(self) -> None:
        self.stopped = True


async def test_a_producer_whose_idempotence_broke_is_replaced_once() -> None:
    # After every broker was killed at once, Kafka may refuse the producer's next
    # sequence number for good (OutOfOrderSequenceNumber): it never sends again. Two
    # shards' passes notice together; one new producer takes its place, the old stops.
    broken, made = StartStopProducer(), []

    def new_producer() -> StartStopProducer:
        made.append(StartStopProducer())
        return made[-1]

    relay = OutboxRelay(None, broken, 500, 1.0, new_producer=new_producer)
    error = OutOfOrderSequenceNumber()
    assert isinstance(error, PRODUCER_BROKEN)
    await asyncio.gather(relay.renew_producer(broken, error), relay.renew_producer(broken, error))
    assert len(made) == 1 and relay.producer is made[0] and made[0].started and broken.stopped
    acked, failure = await relay.publish(_rows(2))  # and the new one sends
    assert (acked, failure) == (2, None)


def test_rows_whose_step_waits_hold_back_only_their_keys_later_rows() -> None:
    now = datetime.now(UTC)
    keys = ["a", "b", "a", "c", "b", "a"]
    rows = [OutboxRow(i, "follows.v1", key, b"", now) for i, key in enumerate(keys)]
    # Row 2 (a's second) waits: a's later rows wait behind it, a's first goes, b and c go.
    assert [row.id for row in ready_rows(rows, {2})] == [0, 1, 3, 4]
    assert [row.id for row in ready_rows(rows, {0, 1})] == [3]
    assert ready_rows(rows, set()) == rows
