"""Reading what really reached a Kafka topic, from a point in time on."""

from __future__ import annotations

import os
from collections.abc import Callable

from aiokafka import AIOKafkaConsumer, ConsumerRecord, TopicPartition

from shared_schemas import codec
from shared_schemas.topics import Topic

BOOTSTRAP = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


class TopicTail:
    """Remembers the topic's end offsets on start; `read()` returns every event that
    arrived since, up to the end offsets at the time of the call."""

    def __init__(self, topic: Topic) -> None:
        self.topic = topic
        self.consumer = AIOKafkaConsumer(bootstrap_servers=BOOTSTRAP, enable_auto_commit=False)

    async def __aenter__(self) -> TopicTail:
        await self.consumer.start()
        partitions = [TopicPartition(self.topic.name, p) for p in range(self.topic.partitions)]
        self.consumer.assign(partitions)
        self.start = await self.consumer.end_offsets(partitions)
        for tp, offset in self.start.items():
            self.consumer.seek(tp, offset)
        return self

    async def __aexit__(self, *exc: object) -> None:
        await self.consumer.stop()

    async def read(self, decode: Callable[[bytes], object] = codec.decode) -> list[tuple[bytes, object]]:
        """(key, decoded value) for everything up to the current end of the topic."""
        return [(record.key, decode(record.value)) for record in await self.records()]

    async def records(self) -> list[ConsumerRecord]:
        """Every record (key, value, headers as sent) up to the current end of the topic."""
        ends = await self.consumer.end_offsets(list(self.start))
        out = []
        for tp, end in ends.items():
            self.consumer.seek(tp, self.start[tp])
            while (position := await self.consumer.position(tp)) < end:
                batch = await self.consumer.getmany(tp, timeout_ms=1000)
                out += [record for record in batch.get(tp, []) if record.offset < end]
                if not batch and await self.consumer.position(tp) == position:
                    break
        return out
