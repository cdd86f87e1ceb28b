"""The warm-up after a lost store, against in-memory fakes: whom it remembers, what it
rebuilds, and that it tells a loss from a first look."""

from __future__ import annotations

import asyncio
import uuid

from tests.unit.services import World, world
from timeline.services.recent_readers import RecentReaders
from timeline.services.warmup import YIELD_SECONDS, Warmup


def test_the_memory_keeps_the_most_recent_readers_and_forgets_the_oldest() -> None:
    recent = RecentReaders(3)
    for user in "abcdb":
        recent.saw(user)  # type: ignore[arg-type]
    assert recent.newest_first() == ["b", "d", "c"]
    off = RecentReaders(0)
    off.saw("a")  # type: ignore[arg-type]
    assert off.newest_first() == []


def _followers_of_one(count: int) -> tuple[World, uuid.UUID, list[uuid.UUID], RecentReaders]:
    """A world whose `count` readers follow one author (fanned out: in the homes), its
    reader remembering its readers."""
    w = world(threshold=100)
    author = w.users.add_user("a")
    readers = [w.users.add_user(f"r{i}") for i in range(count)]
    w.reader.recent = RecentReaders(100)
    for reader in readers:
        w.users.follow(reader, author)
    return w, author, readers, w.reader.recent


async def test_after_a_loss_the_recent_readers_homes_come_back_before_they_ask() -> None:
    w, author, readers, recent = _followers_of_one(5)
    posted = [await w.tweet(author) for _ in range(3)]
    for reader in readers[:4]:  # the fifth never reads
        await w.timeline(reader)
    warmup = Warmup(w.reader, w.store, recent, concurrency=2, check_seconds=0.01)
    assert not await warmup.lost()  # the first look is no loss

    w.store.lose_everything()
    assert await warmup.lost()
    assert await warmup.lost()  # told again until warmed: a warm-up that failed is retried
    assert await warmup.warm() == 4
    warmup.warmed()
    assert not await warmup.lost()  # told once handled
    for reader in readers[:4]:
        assert await w.store.home_ids(reader) == [t.bytes for t in posted[::-1]]
    assert not await w.store.is_materialized(readers[4])
    assert await warmup.warm() == 0  # nothing left to do


async def test_reads_repairing_their_homes_go_first() -> None:
    w, author, readers, recent = _followers_of_one(4)
    await w.tweet(author)
    for reader in readers:
        await w.timeline(reader)
    warmup = Warmup(w.reader, w.store, recent, concurrency=2, check_seconds=0.01)
    await warmup.lost()
    w.store.lose_everything()
    assert await warmup.lost()

    # The first reader's read after the loss rebuilds its home, slowly (a busy source).
    source, gate = w.users.home_source, asyncio.Event()

    async def slow(user_id, *args):  # type: ignore[no-untyped-def]
        if user_id == readers[0]:
            await gate.wait()
        return await source(user_id, *args)

    w.users.home_source = slow  # type: ignore[method-assign]
    read = asyncio.create_task(w.timeline(readers[0]))

    async def repairing() -> None:
        while not w.reader.repairing:
            await asyncio.sleep(0)

    await asyncio.wait_for(repairing(), 5)
    warming = asyncio.create_task(warmup.warm())
    await asyncio.sleep(10 * YIELD_SECONDS)  # the warm-up had time for every home: it took none
    assert [await w.store.is_materialized(r) for r in readers[1:]] == [False] * 3
    gate.set()
    await read
    assert await warming == 3  # the reader's own home was back: the three others
    assert all([await w.store.is_materialized(r) for r in readers])
