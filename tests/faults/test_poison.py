"""Records that can never be applied, among real events on the partitions in use: each
is dead-lettered byte for byte, and the tweets behind it reach their followers."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from shared_schemas import codec, topics
from tests.faults.cases import run_case
from tests.faults.harness import KAFKA, Group
from tests.integration.kafka_tail import TopicTail
from tests.support import eventually

POISON = [
    None,  # a tombstone: a key and no value
    b'{"type": "tweet.created", "text": "\xff\xfe is not UTF-8"}',
    b'{"type": "tweet.exploded", "event_id": "01a22fd7-92c0-7256-8699-67430968a114"}',  # an unknown type
    b'{"type": "tweet.created", "text": "' + b"x" * (codec.MAX_EVENT_BYTES * 4) + b'"}',  # larger than any event
]


async def test_poison_records_are_dead_lettered_and_the_stream_behind_them_arrives(group: Group) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        async with TopicTail(topics.TIMELINE_DEAD_LETTER) as dead:

            async def fault() -> None:
                # Keyed by the stream's authors: on the very partitions their tweets use.
                for author, value in zip([*group.authors, group.celebrity], POISON):
                    await producer.send_and_wait(topics.TWEETS.name, value, key=author.encode())

            await run_case(group, "poison records on tweets.v1", fault)

            async def parked() -> list:
                records = await dead.records()
                return records if len(records) >= len(POISON) else []

            letters = await eventually(parked, timeout=30, what="every poison record dead-lettered")
    finally:
        await producer.stop()
    assert sorted((r.key, r.value or b"") for r in letters) == sorted(
        (a.encode(), v or b"") for a, v in zip([*group.authors, group.celebrity], POISON)
    )
    assert all(dict(r.headers)["dlq.topic"] == topics.TWEETS.name.encode() for r in letters)
