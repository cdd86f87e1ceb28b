"""Create the event topics at their partition counts: `python -m users.create_topics`.

The broker runs with auto-creation off, so a typo in a topic name fails loudly instead
of quietly creating a one-partition topic. Creating a topic that exists is a no-op.
"""

from __future__ import annotations

import asyncio
import logging

from aiokafka.admin import AIOKafkaAdminClient, NewTopic

from shared_schemas import logs, topics
from users import settings as settings_module

log = logging.getLogger("users.topics")


async def ensure_topics(bootstrap: str, replication: int = 1, min_insync: int = 1) -> None:
    """Each topic with `replication` replicas, a write needing `min_insync` of them
    (the producers send with acks=all): one broker down loses no acknowledged event."""
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap)
    await admin.start()
    try:
        existing = set(await admin.list_topics())
        config = {"min.insync.replicas": str(min_insync)}
        missing = [
            NewTopic(t.name, t.partitions, replication, topic_configs=config)
            for t in topics.ALL
            if t.name not in existing
        ]
        if missing:
            await admin.create_topics(missing)
        log.info("topics ready", extra={"created_topics": [t.name for t in missing]})
    finally:
        await admin.close()


def main() -> None:
    settings = settings_module.load()
    logs.configure(settings.log_level)
    asyncio.run(
        ensure_topics(settings.kafka_bootstrap, settings.kafka_replication_factor, settings.kafka_min_insync_replicas)
    )


if __name__ == "__main__":
    main()
