"""shared_schemas.coalesce: calls that wait while one is on its way go together in the
next, each caller gets its own answer, and a failure reaches exactly the callers of the
batch it failed (docs/decisions/0021)."""

from __future__ import annotations

import asyncio

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


async def test_a_caller_that_gives_up_leaves_the_others_answered() -> None:
    remote = Remote()
    coalesce = Coalescer(remote.send)
    calls = [asyncio.ensure_future(coalesce(i)) for i in range(3)]
    await settle()
    calls[1].cancel()
    remote.gate.set()
    results = await asyncio.gather(*calls, return_exceptions=True)
    assert results[0] == 0 and results[2] == 20
    assert isinstance(results[1], asyncio.CancelledError)


async def test_a_batch_answered_with_the_wrong_count_fails_its_callers() -> None:
    async def send(items: list[int]) -> list[int]:
        return items[:-1]

    coalesce = Coalescer(send)
    with pytest.raises(RuntimeError, match="answered with"):
        await coalesce(1)
