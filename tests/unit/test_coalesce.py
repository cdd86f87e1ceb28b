"""shared_schemas.coalesce: calls that wait while one is on its way go together in the
next, each caller gets its own answer, and a failure reaches exactly the callers of the
batch it failed (docs/decisions/0021)."""

from __future__ import annotations

import asyncio
import contextvars

import pytest

from shared_schemas.coalesce import Coalescer


class Remote:
    """A batch call that holds each batch until released, and records what it was sent."""

    def __init__(self, fail_on: set[int] | None = None) -> None:
        self.batches: list[list[int]] = []
        self.gate = asyncio.Event()
        self.fail_on = fail_on or set()

    async def send(self, items: list[int]) -> list[int]:
        self.batches.append(items)
        await self.gate.wait()
        if self.fail_on & set(items):
            raise ConnectionError(f"refused {sorted(self.fail_on & set(items))}")
        return [i * 10 for i in items]


async def settle() -> None:
    """Let every task that can run, run (a call, then the batch it starts)."""
    for _ in range(5):
        await asyncio.sleep(0)


async def test_an_idle_call_goes_at_once_and_alone() -> None:
    remote = Remote()
    remote.gate.set()
    coalesce = Coalescer(remote.send)
    assert await coalesce(1) == 10
    assert await coalesce(2) == 20
    assert remote.batches == [[1], [2]]


async def test_calls_made_while_one_is_on_its_way_go_together_each_with_its_own_answer() -> None:
    remote = Remote()
    coalesce = Coalescer(remote.send)
    first = asyncio.ensure_future(coalesce(0))
    await settle()  # the first batch leaves
    assert remote.batches == [[0]]
    rest = [asyncio.ensure_future(coalesce(i)) for i in range(1, 8)]
    await settle()
    assert remote.batches == [[0]], "the others wait for the batch on its way"
    remote.gate.set()
    assert await asyncio.gather(first, *rest) == [i * 10 for i in range(8)]
    assert remote.batches == [[0], list(range(1, 8))]


async def test_a_batch_holds_at_most_max_batch_calls() -> None:
    remote = Remote()
    coalesce = Coalescer(remote.send, max_batch=3)
    calls = [asyncio.ensure_future(coalesce(i)) for i in range(8)]
    remote.gate.set()
    assert await asyncio.gather(*calls) == [i * 10 for i in range(8)]
    assert [len(b) for b in remote.batches] == [3, 3, 2]
    assert sorted(i for b in remote.batches for i in b) == list(range(8)), "each call sent once"


async def test_a_failure_reaches_the_callers_of_its_batch_and_no_others() -> None:
    remote = Remote(fail_on={2})
    coalesce = Coalescer(remote.send, max_batch=2)
    calls = [asyncio.ensure_future(coalesce(i)) for i in range(4)]
    remote.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert remote.batches == [[0, 1], [2, 3]]
    assert results[:2] == [0, 10]
    assert all(isinstance(r, ConnectionError) for r in results[2:]), results


async def test_a_caller_that_stops_waiting_before_its_batch_leaves_is_not_sent() -> None:
    remote = Remote()
    coalesce = Coalescer(remote.send)
    calls = [asyncio.ensure_future(coalesce(i)) for i in range(3)]
    await settle()  # 0, 1 and 2 leave together
    late = [asyncio.ensure_future(coalesce(i)) for i in range(3, 6)]
    await settle()
    late[1].cancel()  # 4 gives up while waiting for the batch on its way
    remote.gate.set()
    results = await asyncio.gather(*calls, *late, return_exceptions=True)
    assert remote.batches == [[0, 1, 2], [3, 5]]
    assert results[:4] == [0, 10, 20, 30] and results[5] == 50
    assert isinstance(results[4], asyncio.CancelledError)


async def test_callers_waiting_when_the_sender_is_cancelled_are_told() -> None:
    remote = Remote()
    coalesce = Coalescer(remote.send)
    first = asyncio.ensure_future(coalesce(1))
    await settle()
    second = asyncio.ensure_future(coalesce(2))
    await settle()
    assert coalesce._sender is not None
    coalesce._sender.cancel()  # as at shutdown
    results = await asyncio.wait_for(asyncio.gather(first, second, return_exceptions=True), 5)
    assert all(isinstance(r, asyncio.CancelledError) for r in results), results


async def test_a_cancellation_inside_send_reaches_its_callers_as_an_error_and_the_next_batch_goes() -> None:
    sent: list[list[int]] = []

    async def send(items: list[int]) -> list[int]:
        sent.append(items)
        if len(sent) == 1:
            raise asyncio.CancelledError  # what send awaited was cancelled, not this task
        return items

    coalesce = Coalescer(send)
    first = asyncio.ensure_future(coalesce(1))
    with pytest.raises(RuntimeError, match="cancelled"):
        await first
    assert await asyncio.wait_for(coalesce(2), 5) == 2


async def test_a_batch_is_sent_outside_its_first_callers_context() -> None:
    request_id: contextvars.ContextVar[str] = contextvars.ContextVar("request_id", default="none")
    seen: list[str] = []

    async def send(items: list[int]) -> list[int]:
        seen.append(request_id.get())
        return items

    coalesce = Coalescer(send)
    request_id.set("the first caller's")
    assert await coalesce(1) == 1
    assert seen == ["none"], "log lines of a batch must not carry one caller's request id"


async def test_a_batch_answered_with_the_wrong_count_fails_its_callers() -> None:
    async def send(items: list[int]) -> list[int]:
        return items[:-1]

    coalesce = Coalescer(send)
    with pytest.raises(RuntimeError, match="answered with"):
        await coalesce(1)
