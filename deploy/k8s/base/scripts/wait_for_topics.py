"""Init step of the users-create-topics Job: wait until the Strimzi Topic Operator has
created the topics of shared_schemas.topics (from the KafkaTopic resources in
deploy/k8s/infra/kafka), so that `python -m users.create_topics` afterwards finds them
all and creates nothing. Without this wait the Job could win the race against the
operator and create the topics itself with one replica.

Gives up after TOPICS_WAIT_SECONDS (default 300) and exits 0 all the same: on a cluster
without the Topic Operator, create_topics then creates whatever is missing.
Runs in the users-service image (aiokafka and shared_schemas are installed there).
"""

from __future__ import annotations

import asyncio
import os
import sys
import time

from aiokafka.admin import AIOKafkaAdminClient

from shared_schemas import topics


async def missing_topics(bootstrap: str) -> set[str]:
    admin = AIOKafkaAdminClient(bootstrap_servers=bootstrap, request_timeout_ms=10_000)
    await admin.start()
    try:
        return {t.name for t in topics.ALL} - set(await admin.list_topics())
    finally:
        await admin.close()


async def main() -> None:
    bootstrap = os.environ["KAFKA_BOOTSTRAP_SERVERS"]
    deadline = time.monotonic() + float(os.environ.get("TOPICS_WAIT_SECONDS", "300"))
    while True:
        try:
            missing = await missing_topics(bootstrap)
        except Exception as exc:  # noqa: BLE001 - broker not up yet: keep waiting
            print(f"kafka not reachable yet: {exc!r}", file=sys.stderr, flush=True)
        else:
            if not missing:
                print("every topic exists", flush=True)
                return
            print(f"waiting for the topic operator to create {sorted(missing)}", flush=True)
        if time.monotonic() >= deadline:
            print("gave up waiting; create_topics will create what is missing", flush=True)
            return
        await asyncio.sleep(5)


if __name__ == "__main__":
    asyncio.run(main())
