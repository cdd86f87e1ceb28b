"""Calls that arrive while one is on its way go together in the next: group commit, for
the internal API's batch routes (docs/decisions/0021).

Both services call the other once per tweet (the Users API puts each tweet into its
author's home; the fan-out asks for each tweet's followers), and the HTTP request costs
more than what it carries. With a coalescer nobody waits for a batch to fill: an idle
caller's call leaves at once, alone; under load, the calls that queued while the
previous batch was answered leave together, one request for many.
"""

from __future__ import annotations

import asyncio
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """`await coalescer(item)` is `(await send([item, ...]))[i]`, where the list holds
    whatever calls were waiting: `send` answers a list with a list of the same length,
    in order. An exception from `send` is raised to every call of that batch."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], max_batch: int = 64) -> None:
        self._send, self._max_batch = send, max_batch
        self._waiting: deque[tuple[T, asyncio.Future[R]]] = deque()
        # One batch on its way at a time: the calls that come meanwhile make the next.
        # (A second in flight would halve the batches, and would not keep callers from
        # a hung peer: the next batch would hang on it too.)
        self._sender: asyncio.Task[None] | None = None

    async def __call__(self, item: T) -> R:
        future: asyncio.Future[R] = asyncio.get_running_loop().create_future()
        self._waiting.append((item, future))
        if self._sender is None or self._sender.done():
            self._sender = asyncio.create_task(self._drain())  # referenced: not collected
        return await future

    async def _drain(self) -> None:
        while self._waiting:
            batch = [self._waiting.popleft() for _ in range(min(self._max_batch, len(self._waiting)))]
            try:
                results = await self._send([item for item, _ in batch])
                if len(results) != len(batch):
                    raise RuntimeError(f"a batch of {len(batch)} answered with {len(results)}")
            except asyncio.CancelledError:
                for _, future in batch:
                    future.cancel()
                raise
            except Exception as exc:  # noqa: BLE001 - each caller gets it, as if it had called alone
                for _, future in batch:
                    if not future.done():
                        future.set_exception(exc)
                continue
            for (_, future), result in zip(batch, results, strict=True):
                if not future.done():  # a caller cancelled meanwhile: its item went anyway
                    future.set_result(result)
