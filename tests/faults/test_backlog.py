"""A backlog in the worker while a store it needs is down: the workers are stopped, the
stream is posted, the store goes down, the workers start and fail on every event for
the whole outage (retrying), the store comes back. Nothing is dead-lettered, nothing
needs replaying: every backlogged tweet reaches every follower."""

from __future__ import annotations

import asyncio
import time
from collections.abc import Awaitable, Callable

from tests.faults.harness import WORKER_METRICS, WORKERS, Group, assert_stack_whole, astack, metric
from tests.support import eventually

DEAD_LETTERS = "timeline_dead_letters_total"
RETRIES = "timeline_event_retries_total"


async def _backlog(
    group: Group, case: str, outage: float, down: Callable[[], Awaitable[None]], back: Callable[[], Awaitable[None]]
) -> None:
    workers = [f"worker-{i}" for i in range(1, WORKERS + 1)]
    for worker in workers:
        await astack("stop-app", worker)  # SIGTERM: commit what is in hand, leave the group
    await group.stream(per_author=8, interval=0.02)  # all of it accepted, none fanned out
    await down()
    started = time.monotonic()
    try:
        for worker in workers:
            await astack("start-app", worker)
        # The fault is real: the workers have the backlog and fail on it, again and again.
        await eventually(
            lambda: asyncio.to_thread(metric, WORKER_METRICS, RETRIES),
            timeout=30,
            what="the workers to retry the backlog",
        )
        await asyncio.sleep(max(0.0, outage - (time.monotonic() - started)))
        retries = await asyncio.to_thread(metric, WORKER_METRICS, RETRIES)
        print(f"[faults] {case}: {retries:.0f} failed attempts retried during the {outage:.0f}s outage")
    finally:
        await back()
        for worker in workers:
            await astack("start-app", worker)
    await group.converge(case, since=time.monotonic())
    await group.check_redis(rebuilt_allowed=False)
    assert await asyncio.to_thread(metric, WORKER_METRICS, DEAD_LETTERS) == 0, "nothing may be dead-lettered"
    await asyncio.to_thread(assert_stack_whole)


async def test_a_backlog_while_postgres_is_down_for_30_seconds(group: Group) -> None:
    await _backlog(
        group, "backlog, PostgreSQL down 30 s", 30, lambda: astack("kill", "postgres"), lambda: astack("start-infra")
    )


async def test_a_backlog_while_the_users_api_is_down(group: Group) -> None:
    await _backlog(
        group,
        "backlog, Users API down 12 s",
        12,
        lambda: astack("kill", "users-api"),
        lambda: astack("start-app", "users-api"),
    )


async def test_a_backlog_while_the_users_api_hangs(group: Group) -> None:
    # Frozen, not gone: connections are accepted and never answered; only the client's
    # timeout turns each call into a retry.
    await _backlog(
        group,
        "backlog, Users API frozen 12 s",
        12,
        lambda: astack("freeze", "users-api"),
        lambda: astack("thaw", "users-api"),
    )
