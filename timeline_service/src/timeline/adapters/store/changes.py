"""What changed in which list, as the scripts that change lists publish it (sharded
pub/sub: a list's channel lives in the list's slot, so it works on Redis Cluster too).

One subscriber per API process (a connection per node on a cluster) for all its open
streams: a stream asks to hear about its home and its followed celebrities' lists, and
gets each message in its own queue. Messages are hints: a stream reads what is new from
the timeline itself, so a message lost to a reconnect costs time, never an item (every
stream also reads at each keep-alive)."""

from __future__ import annotations

import asyncio
import contextlib
import logging
import uuid
from typing import Any

from redis.asyncio import Redis, RedisCluster
from redis.exceptions import RedisError

from timeline.adapters.store import keys

log = logging.getLogger("timeline.changes")
ADDED = b"+"  # ids were added; "-" and a 16-byte id: that id was removed


class ChangeFeed:
    def __init__(self, redis: Redis | RedisCluster) -> None:
        self.redis = redis
        self._queues: dict[bytes, set[asyncio.Queue[bytes]]] = {}
        self._pubsub: object | None = None
        self._listener: asyncio.Task[None] | None = None
        self._subscribed = asyncio.Event()
        # One (un)subscribe at a time: the first makes the subscriber's connection, and
        # streams opened meanwhile would each make one more, of which only the last is
        # ever given back to the pool: a burst of opens would drain it (decision 0013).
        self._subscribing = asyncio.Lock()

    @staticmethod
    def channels(user: uuid.UUID, celebrities: list[uuid.UUID]) -> list[bytes]:
        """The channels of a home and of the celebrity lists merged into it."""
        names = [keys.changes(keys.home(user).ids), *(keys.changes(keys.celebrity(c).ids) for c in celebrities)]
        return [name.encode() for name in names]

    def _client(self) -> Any:  # PubSub, or ClusterPubSub on a cluster
        if self._pubsub is None:
            self._pubsub = self.redis.pubsub(ignore_subscribe_messages=True)
        return self._pubsub

    async def listen(self, channels: list[bytes], queue: asyncio.Queue[bytes]) -> None:
        new = []
        for channel in channels:
            listeners = self._queues.setdefault(channel, set())
            if not listeners:
                new.append(channel)
            listeners.add(queue)
        if new:
            async with self._subscribing:
                await self._client().ssubscribe(*new)
        self._subscribed.set()
        if self._listener is None or self._listener.done():
            self._listener = asyncio.create_task(self._run())

    async def forget(self, channels: list[bytes], queue: asyncio.Queue[bytes]) -> None:
        gone = []
        for channel in channels:
            listeners = self._queues.get(channel)
            if listeners is None:
                continue
            listeners.discard(queue)
            if not listeners:
                del self._queues[channel]
                gone.append(channel)
        if gone and self._pubsub is not None:
            with contextlib.suppress(RedisError, OSError):
                async with self._subscribing:
                    await self._client().sunsubscribe(*gone)

    async def _next(self) -> dict | None:
        pubsub = self._client()
        if isinstance(self.redis, RedisCluster):
            return await pubsub.get_sharded_message(ignore_subscribe_messages=True, timeout=1.0)
        return await pubsub.get_message(ignore_subscribe_messages=True, timeout=1.0)

    async def _run(self) -> None:
        while True:
            if not self._queues:
                self._subscribed.clear()
                await self._subscribed.wait()
            try:
                message = await self._next()
            except (RedisError, OSError) as exc:
                await self._reconnect(exc)
                continue
            if message is None or message.get("type") not in ("smessage", b"smessage"):
                continue  # nothing within the second, or a (un)subscribe confirmation
            for queue in list(self._queues.get(message["channel"], ())):
                queue.put_nowait(message["data"])

    async def _reconnect(self, exc: BaseException) -> None:
        """A lost connection (a Redis restart): subscribe again, and wake every stream to
        read what it may have missed meanwhile."""
        log.warning("change feed connection lost; subscribing again", extra={"error": repr(exc)})
        pubsub, self._pubsub = self._pubsub, None
        with contextlib.suppress(Exception):
            await pubsub.aclose()  # type: ignore[union-attr]
        await asyncio.sleep(0.5)
        try:
            if self._queues:
                async with self._subscribing:
                    await self._client().ssubscribe(*self._queues)
        except (RedisError, OSError):
            return  # the next round tries again
        for listeners in self._queues.values():
            for queue in listeners:
                queue.put_nowait(ADDED)

    async def close(self) -> None:
        if self._listener is not None:
            self._listener.cancel()
            with contextlib.suppress(asyncio.CancelledError, Exception):
                await self._listener
        if self._pubsub is not None:
            with contextlib.suppress(Exception):
                await self._pubsub.aclose()  # type: ignore[attr-defined]
