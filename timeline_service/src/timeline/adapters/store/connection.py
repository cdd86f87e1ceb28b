"""The Redis connection: a single server, or Redis Cluster with the same code above it."""

from __future__ import annotations

import asyncio
import collections
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
    one argument at a time: a good share of the client's CPU for a pipeline of tweets
    into homes, or for a push to a hundred homes (docs/decisions/0021;
    docs/benchmarks.md, "Redis commands packed in C"). The store passes bytes, str, int
    and float only, which hiredis packs as redis-py does."""

    def pack_command(self, *args: Any) -> list[bytes]:
        if isinstance(args[0], str):  # "SCRIPT LOAD" and the like: words go separately
            args = (*args[0].encode().split(), *args[1:])
        return [hiredis.pack_command(args)]


class WaitingPool(ConnectionPool):
    """redis-py's pool, except that a command past `max_connections` waits for one to
    come free (up to `wait` seconds) instead of failing at once: a burst (500 live
    streams reconnecting, a spike of reads while Redis is slow) is served, not answered
    503 while Redis idles. redis-py's BlockingConnectionPool does the same but takes a
    lock and a timer for every command, client CPU that every command pays for a wait
    that few need (docs/decisions/0013): this pool waits only once it is exhausted,
    first come first served, each release waking one waiter."""

    def __init__(self, *, wait: float, **kwargs: Any) -> None:
        super().__init__(**kwargs)
        self._wait = wait
        self._waiters: collections.deque[asyncio.Future[None]] = collections.deque()

    async def get_connection(self, *args: Any, **kwargs: Any) -> AbstractConnection:
        if not self._waiters:  # (while some wait, a newcomer queues behind them)
            try:
                return await super().get_connection(*args, **kwargs)
            except MaxConnectionsError:
                pass
        loop = asyncio.get_running_loop()
        deadline = loop.time() + self._wait
        while True:
            waiter: asyncio.Future[None] = loop.create_future()
            self._waiters.append(waiter)
            try:
                # The 1 s cap only guards against a wake-up lost some way not foreseen.
                await asyncio.wait_for(asyncio.shield(waiter), max(0.0, min(deadline - loop.time(), 1.0)))
            except TimeoutError:
                if loop.time() >= deadline:
                    self._pass_on(waiter)
                    raise RedisConnectionError(f"no Redis connection came free in {self._wait} s") from None
                # (the cap) look again
            except BaseException:
                self._pass_on(waiter)
                raise
            finally:
                if not waiter.done():
                    waiter.cancel()
                with contextlib.suppress(ValueError):
                    self._waiters.remove(waiter)
            try:
                return await super().get_connection(*args, **kwargs)
            except MaxConnectionsError:
                continue  # taken first by a command that found no queue: wait again

    def _pass_on(self, waiter: asyncio.Future[None]) -> None:
        """A waiter giving up: if it was woken as it did, the turn goes to the next."""
        if waiter.done() and not waiter.cancelled():
            self._wake()

    def _wake(self) -> None:
        while self._waiters:
            waiter = self._waiters.popleft()
            if not waiter.done():
                waiter.set_result(None)
                return

    async def release(self, connection: AbstractConnection) -> None:
        await super().release(connection)
        if self._waiters:
            self._wake()


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
