"""Helpers shared by the tests: where the stack is, and waiting on conditions."""

from __future__ import annotations

import asyncio
import os
import subprocess
import time
import uuid
from collections.abc import Awaitable, Callable
from pathlib import Path
from typing import TypeVar

from aiokafka.admin import AIOKafkaAdminClient
from aiokafka.coordinator.protocol import ConsumerProtocolMemberAssignment

T = TypeVar("T")

ROOT = Path(__file__).resolve().parents[1]
GATEWAY = f"http://127.0.0.1:{os.environ.get('GATEWAY_PORT', '8080')}"
USERS_API = f"http://127.0.0.1:{os.environ.get('USERS_API_PORT', '8001')}"
TIMELINE_API = f"http://127.0.0.1:{os.environ.get('TIMELINE_API_PORT', '8002')}"
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")
WORKER_GROUP = os.environ.get("TIMELINE_CONSUMER_GROUP", "timeline-fanout")
SEED = [uuid.UUID(f"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1{i}") for i in range(1, 6)]


def unique_name(prefix: str = "t") -> str:
    """A fresh valid username (1..15 of [A-Za-z0-9_])."""
    return f"{prefix}_{uuid.uuid4().hex[:12]}"[:15]


def wait_for(check: Callable[[], T], timeout: float = 10.0, interval: float = 0.1, what: str = "condition") -> T:
    """Poll `check` until it returns something truthy; fail with `what` after `timeout`."""
    deadline = time.monotonic() + timeout
    while True:
        result = check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        time.sleep(interval)


async def eventually(
    check: Callable[[], Awaitable[T]], timeout: float = 10.0, interval: float = 0.1, what: str = "condition"
) -> T:
    deadline = time.monotonic() + timeout
    while True:
        result = await check()
        if result:
            return result
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout}s waiting for {what}; last: {result!r}")
        await asyncio.sleep(interval)


def stack(*args: str) -> None:
    """Drive the running stack's processes: `stop-app NAME`, `start-apps`."""
    subprocess.run(["bash", str(ROOT / "deploy/local/stack.sh"), *args], check=True, capture_output=True)


async def workers_own_partitions(workers: int, timeout: float = 30.0) -> list[list[tuple[str, int]]]:
    """Until the fan-out's consumer group has `workers` members, each owning partitions
    (the rebalance that started them is over): what each owns, as (topic, partition)."""
    admin = AIOKafkaAdminClient(bootstrap_servers=KAFKA)
    await admin.start()
    try:

        async def assignments() -> list[list[tuple[str, int]]] | None:
            (response,) = await admin.describe_consumer_groups([WORKER_GROUP])
            (group,) = response.to_object()["groups"]
            owned = [
                [(topic, p) for topic, partitions in decoded.assignment for p in partitions]
                for m in group["members"]
                if m["member_assignment"]
                for decoded in [ConsumerProtocolMemberAssignment.decode(m["member_assignment"])]
            ]
            settled = group["state"] == "Stable" and len(owned) == workers and all(owned)
            return owned if settled else None

        return await eventually(assignments, timeout=timeout, what=f"{workers} workers with partitions")
    finally:
        await admin.close()
