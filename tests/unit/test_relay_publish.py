"""The relay's rule for a batch, against a fake producer: only the acknowledged prefix
leaves the outbox, so a user's later event never overtakes an earlier one."""

from __future__ import annotations

import asyncio
from datetime import UTC, datetime

from users.adapters.outbox_repo import OutboxRow
from users.relay.outbox_relay import OutboxRelay


class FakeProducer:
    """Acknowledges every send except those named: refused when queued, or failed when
    acknowledged."""

    def __init__(self, refuse_queued: set[int] = frozenset(), fail_ack: set[int] = frozenset()) -> None:
        self.refuse_queued, self.fail_ack = refuse_queued, fail_ack
        self.queued: list[bytes] = []

    async def send(self, topic: str, value: bytes, key: bytes) -> asyncio.Future:
        n = int(value)
        if n in self.refuse_queued:
            raise TimeoutError("no metadata")
        self.queued.append(value)
        ack = asyncio.get_running_loop().create_future()
        if n in self.fail_ack:
            ack.set_exception(TimeoutError("no acknowledgement"))
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
