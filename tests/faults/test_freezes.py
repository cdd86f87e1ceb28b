"""Hung parts (SIGSTOP: connections open, nothing answers) mid-stream: every client's
timeout turns the hang into a retry, and nothing is lost once the part answers again."""

from __future__ import annotations

import asyncio

from tests.faults.cases import run_case
from tests.faults.harness import Group, astack


def _frozen_for(name: str, seconds: float):
    async def fault() -> None:
        await astack("freeze", name)
        try:
            await asyncio.sleep(seconds)  # the length of the hang is the fault itself
        finally:
            await astack("thaw", name)

    return fault


async def test_redis_frozen_for_8_seconds(group: Group) -> None:
    await run_case(group, "Redis frozen 8 s", _frozen_for("redis", 8))


async def test_postgres_frozen_for_12_seconds(group: Group) -> None:
    await run_case(group, "PostgreSQL frozen 12 s", _frozen_for("postgres", 12))
