"""The Kafka producer the relay publishes with."""

from __future__ import annotations

from aiokafka import AIOKafkaProducer

from users.settings import Settings


def relay_producer(settings: Settings) -> AIOKafkaProducer:
    """The relay's producer, as its settings say."""
    # Idempotent with acks=all: a send retried after a lost acknowledgement is not
    # written twice, and an acknowledged event is on every in-sync replica.
    return AIOKafkaProducer(
        bootstrap_servers=settings.kafka_bootstrap,
        enable_idempotence=True,
        acks="all",
        linger_ms=5,
        client_id="users-outbox-relay",
        # A send that Kafka has not acknowledged by then fails, and its row stays.
        request_timeout_ms=settings.kafka_request_timeout_ms,
        # aiokafka asks only the brokers it knows for metadata, and never the bootstrap
        # servers again: a view taken while one broker alone was up (every broker
        # restarted) names only that one, and once it dies the client is stuck (the
        # fault suite: docs/decisions/0019). Asked again every few seconds, the view
        # names the whole cluster soon after it is back.
        metadata_max_age_ms=settings.kafka_metadata_max_age_ms,
    )
