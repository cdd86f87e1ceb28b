"""A Kafka client's view of the cluster heals by itself (decision 0019).

aiokafka asks only the brokers its view names for a new view. A view taken while one
broker alone was up (every broker restarted, that one first) named only that broker,
and with aiokafka's default it lasted five minutes: when that broker died meanwhile,
the relay's producer and the worker's consumer were stuck ("Unable to update metadata
from [2]", a fault-suite run of session 11). Built as the relay and the worker build
them, each client here is given such a view, and must name the whole cluster again
within a few seconds, while every broker is up."""

from __future__ import annotations

import asyncio
import os
import time
from typing import Any

import pytest

from timeline import settings as timeline_settings
from timeline.worker.__main__ import kafka_clients
from users import settings as users_settings
from users.adapters.kafka import relay_producer

BROKERS = len(os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092").split(","))

pytestmark = pytest.mark.skipif(BROKERS < 2, reason="needs a cluster of brokers (the test stack runs three)")


def _inner(client: Any) -> Any:
    """The AIOKafkaClient inside a producer (`client`) or a consumer (`_client`)."""
    return getattr(client, "client", None) or client._client


def _one_broker_left(client: Any) -> None:
    """The view as it was after the restart: one broker alone (aiokafka keeps the brokers
    of its view in ClusterMetadata._brokers, which a metadata response replaces)."""
    cluster = client.cluster
    first = min(cluster._brokers)
    cluster._brokers = {first: cluster._brokers[first]}


async def _seconds_to_whole(client: Any, limit: float) -> float | None:
    started = time.monotonic()
    while time.monotonic() - started < limit:
        if len(client.cluster.brokers()) == BROKERS:
            return time.monotonic() - started
        await asyncio.sleep(0.1)
    return None


async def test_the_relay_and_the_worker_learn_the_whole_cluster_again() -> None:
    consumer, dead_letters = kafka_clients(timeline_settings.load())
    relay = relay_producer(users_settings.load())
    clients = {"the worker's consumer": consumer, "the worker's producer": dead_letters, "the relay's producer": relay}
    for client in clients.values():
        await client.start()
    try:
        for client in clients.values():
            assert len(_inner(client).cluster.brokers()) == BROKERS  # started with the whole cluster
            _one_broker_left(_inner(client))
            assert len(_inner(client).cluster.brokers()) == 1
        # KAFKA_METADATA_MAX_AGE_MS (5 s) and a margin; aiokafka's own default, 300 s,
        # would leave every one of them naming one broker.
        took = await asyncio.gather(*(_seconds_to_whole(_inner(c), 15.0) for c in clients.values()))
        stuck = [name for name, seconds in zip(clients, took, strict=True) if seconds is None]
        assert not stuck, f"still naming one broker after 15 s: {stuck}"
    finally:
        for client in clients.values():
            await client.stop()
