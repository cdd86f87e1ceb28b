"""The relay keeps a user's events in order through a failed send: only the acknowledged
prefix of a batch leaves the outbox, and the rest goes again, in order, after the
failed row. Real PostgreSQL and Kafka; the failure is injected into one send."""

from __future__ import annotations

import asyncio
import uuid

import pytest
from aiokafka.errors import KafkaTimeoutError

from shared_schemas import codec, topics
from shared_schemas.events import TweetCreated
from shared_schemas.ids import new_id, utcnow
from tests.integration.kafka_tail import TopicTail
from users.adapters import outbox_repo
from users.adapters.kafka import relay_producer
from users.relay.outbox_relay import OutboxRelay
from users.settings import Settings


class OneSendFails:
    """The real producer, except that the send of one payload fails once: refused when
    queued (no metadata: the broker down) or when acknowledged (a timeout)."""

    def __init__(self, producer, payload: bytes, when: str) -> None:
        self.producer, self.payload, self.when, self.failed = producer, payload, when, False

    async def send(self, topic: str, value: bytes, key: bytes):
        if value == self.payload and not self.failed:
            self.failed = True
            if self.when == "queued":
                raise KafkaTimeoutError("injected: no metadata")
            refused = asyncio.get_running_loop().create_future()
            refused.set_exception(KafkaTimeoutError("injected: no acknowledgement"))
            return refused
        return await self.producer.send(topic, value, key=key)


def _event(author: uuid.UUID, n: int) -> TweetCreated:
    now = utcnow()
    return TweetCreated(
        event_id=new_id(),
        occurred_at=now,
        tweet_id=new_id(),
        author_id=author,
        username="order",
        text=f"event {n}",
        created_at=now,
    )


async def _outbox_texts(db, shard: int, author: uuid.UUID) -> list[str]:
    async with db.raw_primary(shard) as conn:
        rows = await outbox_repo.take_batch(conn, 1000)
    return [codec.decode(r.payload).text for r in rows if r.key == str(author)]


@pytest.mark.parametrize("when", ["queued", "acknowledged"])
async def test_a_failed_send_keeps_it_and_every_later_row_for_the_next_pass(db, relay_stopped, when: str) -> None:
    author = uuid.uuid4()
    shard = db.map.for_user(author)
    events = [_event(author, n) for n in range(4)]
    async with db.primaries[shard].begin() as conn:
        for event in events:
            await outbox_repo.add(conn, topics.TWEETS.name, str(author), event)
    producer = relay_producer(Settings())
    await producer.start()
    try:
        relay = OutboxRelay(db, OneSendFails(producer, codec.encode(events[1]), when), 500, 1.0)
        async with TopicTail(topics.TWEETS) as tail:
            await relay.drain_shard(shard)
            # The failed row and every row after it stay, whatever Kafka got of them.
            assert await _outbox_texts(db, shard, author) == ["event 1", "event 2", "event 3"]
            await relay.drain_shard(shard)
            assert await _outbox_texts(db, shard, author) == []
            sent = [event.text for key, event in await tail.read() if key == str(author).encode()]
    finally:
        await producer.stop()
    # Event 0 once, then events 1..3 in order as the last word: a later event never ends
    # up before an earlier one. (Refused when queued, nothing after it went out at all.)
    assert sent[0] == "event 0" and sent.count("event 0") == 1
    assert sent[-3:] == ["event 1", "event 2", "event 3"]
    if when == "queued":
        assert sent == ["event 0", "event 1", "event 2", "event 3"]
