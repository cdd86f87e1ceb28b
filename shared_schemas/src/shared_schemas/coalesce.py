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
import contextvars
from collections import deque
from collections.abc import Awaitable, Callable
from typing import Generic, TypeVar

T = TypeVar("T")
R = TypeVar("R")


class Coalescer(Generic[T, R]):
    """`await coalescer(item)` is `(await send([item, ...]))[i]`, where the list holds
    whatever calls were waiting: `send` answers a list with a list of the same length,
    in order. An exception from `send` is raised to every call of that batch.

    A caller that stops waiting (cancelled, or its own timeout) before its batch leaves
    is not sent. `max_batch` should exceed the calls that can wait at once, so that a
    call waits at most for the batch on its way and its own: a peer that hangs until
    its timeout costs each caller two timeouts, not a queue of them."""

    def __init__(self, send: Callable[[list[T]], Awaitable[list[R]]], max_batch: int = 1000) -> None:
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
            # A context of its own: the batch is nobody's request (its log lines carry
            # no caller's request id). Referenced, so the task is not collected.
            self._sender = asyncio.create_task(self._drain(), context=contextvars.Context())
        return await future

    def _next_batch(self) -> list[tuple[T, asyncio.Future[R]]]:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        while self._waiting and len(batch) < self._max_batch:
            item, future = self._waiting.popleft()
            if not future.done():  # done: its caller stopped waiting
                batch.append((item, future))
        return batch

    async def _drain(self) -> None:
        batch: list[tuple[T, asyncio.Future[R]]] = []
        try:
            while batch := self._next_batch():
                try:
                    results = await self._send([item for item, _ in batch])
                    if len(results) != len(batch):
                        raise RuntimeError(f"a batch of {len(batch)} answered with {len(results)}")
                except asyncio.CancelledError:
                    task = asyncio.current_task()
                    if task is not None and task.cancelling():
                        raise  # this task is being cancelled (shutdown): below
                    _fail(batch, RuntimeError("the call was cancelled"))  # by what `send` awaited
                    continue
                except Exception as exc:  # noqa: BLE001 - each caller gets it, as if it had called alone
                    _fail(batch, exc)
                    continue
                for (_, future), result in zip(batch, results, strict=True):
                    if not future.done():  # a caller that stopped waiting: its item went anyway
                        future.set_result(result)
        except BaseException:
            # Cancelled, or worse: nobody is left to send what waits. Its callers are
            # told, not left waiting for ever.
            for _, future in [*batch, *self._waiting]:
                future.cancel()
            self._waiting.clear()
            raise


def _fail(batch: list[tuple[T, asyncio.Future[R]]], exc: Exception) -> None:
    for _, future in batch:
        if not future.done():
            future.set_exception(exc)
