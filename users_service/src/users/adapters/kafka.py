"""The Kafka producer the relay publishes with."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer


def make_producer(bootstrap: str, request_timeout_ms: int = 15000) -> AIOKafkaProducer:
    # Idempotent with acks=all: a send retried after a lost acknowledgement is not
    # written twice, and an acknowledged event is on every in-sync replica.
    return AIOKafkaProducer(
        bootstrap_servers=bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        client_id="users-outbox-relay",
        # A send that Kafka has not acknowledged by then fails, and its row stays.
        request_timeout_ms=request_timeout_ms,
    )
