"""The worker's Kafka clients outlive every broker their view names (decision 0019).

After every broker restarted, the worker's view could name one broker alone, the first
back; when that broker died before the view widened, the worker's consumer asked only
it for a new view, for minutes, while two brokers were up (aio-libs/aiokafka#459; a
fault-suite run of session 17). Built as the worker builds them and watched as it
watches them, the consumer and the dead-letter producer here are left with such a
view, its broker killed: the producer must still send and the consumer still receive.
"""

from __future__ import annotations

import asyncio
import dataclasses
import os
import uuid
from typing import Any

import pytest
from aiokafka import AIOKafkaConsumer
from aiokafka.admin import AIOKafkaAdminClient, NewTopic
from aiokafka.conn import CloseReason

from tests.faults.harness import KAFKA, astack
from timeline import settings as timeline_settings
from timeline.worker import rebootstrap
from timeline.worker.__main__ import kafka_clients
from timeline.worker.retry import Backoff

pytestmark = pytest.mark.skipif(
    int(os.environ.get("KAFKA_BROKERS", "1")) < 3, reason="needs the test stack's cluster of three brokers"
)

KILLED = 2  # kafka-2's node.id (deploy/local/infra.sh)


async def _received(consumer: AIOKafkaConsumer, value: bytes, timeout: float) -> bool:
    loop = asyncio.get_running_loop()
    deadline = loop.time() + timeout
    while loop.time() < deadline:
        batches = await consumer.getmany(timeout_ms=500)
        if any(r.value == value for records in batches.values() for r in records):
            return True
    return False


async def _as_after_a_restart(client: Any, broker: Any) -> None:
    """The client as every broker's restart left it: a view naming `broker` alone (taken
    while it alone was up), and no connection to any other broker (the restart closed
    them all; aiokafka opens one only to a broker its view names)."""
    client.cluster._brokers = {broker.nodeId: broker}
    others = [conn for (node, _group), conn in client._conns.items() if node != broker.nodeId]
    await asyncio.gather(*(conn.close(reason=CloseReason.SHUTDOWN) for conn in others))


async def test_the_worker_outlives_the_one_broker_its_view_names() -> None:
    topic = f"test-view-{uuid.uuid4().hex[:8]}"
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    await admin.create_topics([NewTopic(topic, num_partitions=3, replication_factor=3)])
    settings = dataclasses.replace(timeline_settings.load(), consumer_group=topic)
    consumer, producer = kafka_clients(settings)
    consumer.subscribe([topic])
    await consumer.start()
    await producer.start()
    stop = asyncio.Event()
    backoff = Backoff(settings.retry_backoff_seconds, settings.retry_max_backoff_seconds)  # the worker's
    views = rebootstrap.Views({"consumer": consumer, "producer": producer}, backoff)
    watching = asyncio.create_task(views.run(stop))
    try:
        await producer.send_and_wait(topic, b"before")
        assert await _received(consumer, b"before", 30), "the consumer got nothing with every broker up"

        inner = [rebootstrap.client_of(consumer), rebootstrap.client_of(producer)]
        doomed = inner[0].cluster.broker_metadata(KILLED)
        assert doomed is not None
        await astack("kill", f"kafka-{KILLED}")
        for client in inner:
            await _as_after_a_restart(client, doomed)

        # Without the watch, both ask the dead broker alone until it returns: the send
        # times out waiting for a leader, the consumer hears nothing.
        await asyncio.wait_for(producer.send_and_wait(topic, b"after"), 90)
        assert await _received(consumer, b"after", 90), "the consumer got nothing from the two live brokers"
        for client in inner:
            assert len(client.cluster.brokers()) >= 2, "the view still names the dead broker alone"
        assert all(watch.rebootstraps for watch in views.watches), "healed, but not by the watch"
    finally:
        stop.set()
        await watching
        await astack("up")
        await consumer.stop()
        await producer.stop()
        await admin.delete_topics([topic])
        await admin.close()
