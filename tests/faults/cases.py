"""One shape for every case: materialized homes, a stream, a fault part-way, the check."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tests.faults.harness import Group, assert_stack_whole, homes_repaired


async def run_case(
    group: Group,
    case: str,
    fault: Callable[[], Awaitable[None]],
    *,
    per_author: int = 8,
    interval: float = 0.1,
    redis_lost: bool = False,
) -> float:
    """Stream tweets, run `fault` (the break and the recovery) a third of the way in,
    finish the stream, then wait for the timelines and check them."""
    third = asyncio.Event()
    stream = asyncio.create_task(group.stream(per_author, interval, third))
    waiting = asyncio.create_task(third.wait())
    await asyncio.wait({stream, waiting}, return_when=asyncio.FIRST_COMPLETED)
    waiting.cancel()
    if stream.done():
        stream.result()  # the stream failed before the fault: say why
    await fault()
    recovered = time.monotonic()
    repaired = None
    if redis_lost:
        # The lost homes are rebuilt from PostgreSQL by now, or by the first reads here.
        # From then on none may go missing again: a home rebuilt after the recovery
        # would hide a tweet whose fan-out was lost.
        await group.materialize()
        repaired = await asyncio.to_thread(homes_repaired)
    await stream
    took = await group.converge(case, since=recovered)
    await group.check_redis(rebuilt_allowed=redis_lost)
    if repaired is not None:
        assert await asyncio.to_thread(homes_repaired) == repaired, "a read after the recovery found its home missing"
    await asyncio.to_thread(assert_stack_whole)
    return took
