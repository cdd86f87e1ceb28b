"""A Redis that refuses writes for want of memory (its keys all without an expiry to
evict, or a policy that evicts none) is a 503 to retry, never a 500: a read whose home
must be rebuilt waits for it, and the homes Redis still holds are read as ever."""

from __future__ import annotations

import os
from collections.abc import AsyncIterator
from contextlib import asynccontextmanager

import httpx
from redis.asyncio import Redis

from tests.support import GATEWAY, unique_name

REDIS_URL = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0")


@asynccontextmanager
async def full(redis: Redis) -> AsyncIterator[None]:
    """Redis past its memory limit, with nothing it may evict, for the block's length."""
    before = {**await redis.config_get("maxmemory"), **await redis.config_get("maxmemory-policy")}
    await redis.config_set("maxmemory-policy", "noeviction")
    await redis.config_set("maxmemory", "1")
    try:
        yield
    finally:
        for name, value in before.items():
            await redis.config_set(name, value)


async def test_a_redis_refusing_writes_for_memory_is_a_503_and_held_homes_are_still_read() -> None:
    redis = Redis.from_url(REDIS_URL)
    try:
        async with httpx.AsyncClient(base_url=GATEWAY, timeout=10) as api:
            held, new = [
                (await api.post("/api/v1/users", json={"username": unique_name()})).json()["user_id"] for _ in range(2)
            ]
            assert (await api.get("/api/v1/timeline", headers={"X-User-ID": held})).status_code == 200
            async with full(redis):
                refused = await api.get("/api/v1/timeline", headers={"X-User-ID": new})  # a rebuild: writes
                read = await api.get("/api/v1/timeline", headers={"X-User-ID": held})
            assert refused.status_code == 503, (refused.status_code, refused.text)
            assert refused.headers["content-type"].startswith("application/json") and refused.json()["detail"]
            assert refused.headers["Retry-After"] == "1"
            assert read.status_code == 200, read.text
            after = await api.get("/api/v1/timeline", headers={"X-User-ID": new})  # memory back: rebuilt
            assert after.status_code == 200, after.text
    finally:
        await redis.aclose()
