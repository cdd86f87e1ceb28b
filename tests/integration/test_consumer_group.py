"""Several timeline workers share the event partitions in one consumer group."""

from __future__ import annotations

import os

import pytest
from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

from shared_schemas import topics
from tests.support import eventually

WORKERS = int(os.environ.get("TIMELINE_WORKER_COUNT", "1"))
GROUP = os.environ.get("TIMELINE_CONSUMER_GROUP", "timeline-fanout")


@pytest.mark.skipif(WORKERS < 2, reason="the stack runs one worker (make test runs two)")
async def test_every_worker_owns_some_partitions_and_none_is_owned_twice() -> None:
    admin = AIOKafkaAdminClient(bootstrap_servers=os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    await admin.start()
    try:

        async def assignments():
            (response,) = await admin.describe_consumer_groups([GROUP])
            (group,) = response.to_object()["groups"]
            owned = [
                [(topic, p) for topic, partitions in decoded.assignment for p in partitions]
                for m in group["members"]
                if m["member_assignment"]
                for decoded in [ConsumerProtocolMemberAssignment.decode(m["member_assignment"])]
            ]
            return owned if len(owned) == WORKERS and all(owned) else None

        owned = await eventually(assignments, timeout=30, what=f"{WORKERS} workers with partitions")
    finally:
        await admin.close()
    flat = [tp for member in owned for tp in member]
    expected = {(t.name, p) for t in topics.ALL if t.name in topics.TIMELINE_SOURCES for p in range(t.partitions)}
    assert len(flat) == len(set(flat)) and set(flat) == expected
