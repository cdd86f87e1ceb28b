"""The Redis connection: a single server, or Redis Cluster with the same code above it."""

from __future__ import annotations

import asyncio
import contextlib
from importlib import resources
from typing import Any, cast

import hiredis
from redis.asyncio import ConnectionPool, Redis, RedisCluster
from redis.asyncio.connection import AbstractConnection, Connection
from redis.asyncio.retry import Retry
from redis.backoff import ExponentialBackoff
from redis.exceptions import ConnectionError as RedisConnectionError
from redis.exceptions import MaxConnectionsError


class CPackedConnection(Connection):
    """Commands packed by hiredis, in C. redis-py's asyncio connection packs in Python,
    one argument at a time: a fifth of the client's CPU for a pipeline of tweets into
    homes, or for a push to a hundred homes (docs/decisions/0021). The store passes
    bytes, str, int and float only, which hiredis packs as redis-py does."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "SCRIPT LOAD" and the like: words go separately
            args = (*args[0].encode().split(), *args[1:])
        return [hiredis.pack_command(args)]


class WaitingPool(ConnectionPool):
    """redis-py's pool, except that a command past `max_connections` waits for one to
    come free (up to `wait` seconds) instead of failing at once: a burst (500 live
    streams reconnecting, a spike of reads while Redis is slow) is served, not answered
    503 while Redis idles. redis-py's BlockingConnectionPool does the same but takes a
    lock and a timer for every command, 30% more client CPU a command here (33 against
    43 µs, docs/benchmarks.md, session 17): this pool waits only once it is exhausted."""

    def __init__(self, *, wait: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wait, self._waiting = wait, 0
        self._freed: asyncio.Event | None = None  # made in the running loop, when first needed

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        try:
            return await super().get_connection(*args, **kwargs)
        except MaxConnectionsError:
            pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        freed = self._freed = self._freed or asyncio.Event()
        self._waiting += 1
        try:
            while True:
                # Woken by a release, or a look every 50 ms (a release between the
                # failed try and the wait woke nobody).
                remaining = deadline - loop.time()
                if remaining <= 0:
                    raise RedisConnectionError(f"no Redis connection came free in {self._wait} s")
                freed.clear()
                with contextlib.suppress(TimeoutError):
                    await asyncio.wait_for(freed.wait(), min(remaining, 0.05))
                try:
                    return await super().get_connection(*args, **kwargs)
                except MaxConnectionsError:
                    continue
        finally:
            self._waiting -= 1

    async def release(self, connection: AbstractConnection) -> None:
        await super().release(connection)
        if self._waiting and self._freed is not None:
            self._freed.set()


def connect(
    url: str, cluster: bool, connect_timeout: float = 2.0, timeout: float = 5.0, max_connections: int = 100
) -> Redis | RedisCluster:
    # Raw bytes in and out: timeline entries are 16-byte ids and cached items are the
    # exact JSON the API returns, so nothing is decoded on the way. The timeouts turn a
    # hung server into an error the caller retries (the worker) or answers (the API).
    # A pooled connection that a Redis restart closed fails its next command: reconnect
    # and send it again (every command here is idempotent), twice at most, at once.
    retry = Retry(ExponentialBackoff(cap=0.1, base=0.01), 2, supported_errors=(RedisConnectionError,))
    options: dict[str, Any] = {
        "decode_responses": False,
        "socket_connect_timeout": connect_timeout,
        "socket_timeout": timeout,
        "retry": retry,
    }
    if cluster:  # (RedisCluster makes its nodes' connections itself: packed in Python)
        return RedisCluster.from_url(url, max_connections=max_connections, **options)
    # At most `max_connections`; a command beyond them waits for one, up to the timeout.
    pool = WaitingPool.from_url(
        url, connection_class=CPackedConnection, max_connections=max_connections, wait=timeout, **options
    )
    return Redis.from_pool(pool)


async def mget(redis: Redis | RedisCluster, keys: list[bytes]) -> list[bytes | None]:
    """MGET, split by slot on a cluster (keys of different tweets share no slot)."""
    if isinstance(redis, RedisCluster):
        return cast(list[bytes | None], await redis.mget_nonatomic(keys))
    return cast(list[bytes | None], await redis.mget(keys))


def script_source(name: str) -> str:
    """The text of one of the Lua scripts in timeline/adapters/store/lua."""
    return resources.files("timeline.adapters.store").joinpath(f"lua/{name}").read_text()
