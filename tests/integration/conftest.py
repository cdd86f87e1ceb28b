"""Integration tests drive the adapters and services against the stack's real servers."""

from __future__ import annotations

import os

import pytest
from redis.asyncio import Redis, RedisCluster

from tests.support import stack
from users.adapters.db import ShardedDatabase
from users.settings import Settings as UsersSettings

MAX_FOLLOWING = UsersSettings().max_following


@pytest.fixture(scope="session")
async def db():
    database = ShardedDatabase(UsersSettings())
    await database.refresh()  # the catalog's map: a growth test may have moved shards
    yield database
    await database.dispose()


@pytest.fixture(scope="session")
async def scratch_redis():
    """A Redis database of its own (15), so adapter tests never meet the worker's keys."""
    base = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0").rsplit("/", 1)[0]
    client = Redis.from_url(f"{base}/15")
    await client.flushdb()
    yield client
    await client.aclose()


@pytest.fixture(scope="session")
async def cluster_redis():
    """The test stack's three-node Redis Cluster (REDIS_CLUSTER_PORTS), if it runs one."""
    ports = os.environ.get("REDIS_CLUSTER_PORTS", "").split()
    if not ports:
        pytest.skip("no Redis Cluster in this stack (make test starts one)")
    client = RedisCluster.from_url(f"redis://127.0.0.1:{ports[0]}")
    yield client
    await client.aclose()


@pytest.fixture(params=["scratch_redis", "cluster_redis"])
def any_redis(request):
    """Each feed test runs on a single Redis and on Redis Cluster: the same code."""
    return request.getfixturevalue(request.param)


@pytest.fixture
def relay_stopped():
    """Every relay is down for the test body (a crash between commit and publish), and
    back up afterwards whatever happens."""
    for i in range(1, int(os.environ.get("USERS_RELAY_COUNT", "1")) + 1):
        stack("stop-app", f"relay-{i}")
    try:
        yield
    finally:
        stack("start-apps")
