"""Reading pages against in-memory fakes: rebuilds, paging past the cached window into
the source of truth, lost celebrity lists, failed rebuilds."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from tests.fakes import Unreachable
from tests.unit.services import world
from timeline.domain.errors import NotFound


async def test_a_home_missing_from_the_store_is_rebuilt_from_the_source_on_read() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    posted = [await w.tweet(author) for _ in range(4)]
    assert not await w.store.is_materialized(reader)
    assert await w.timeline(reader) == posted[::-1]
    assert await w.store.is_materialized(reader)


async def test_an_unknown_caller_is_not_found() -> None:
    with pytest.raises(NotFound):
        await world().reader.page(uuid.uuid4(), None, 20)


async def test_pages_past_the_cached_window_continue_from_the_source_without_a_gap() -> None:
    w = world(threshold=2, max_items=4)  # windows of four ids
    me, friend, star, fan = (w.users.add_user(n) for n in ("m", "f", "s", "x"))
    await w.timeline(me)
    await w.follow(me, friend)
    await w.follow(me, star)
    await w.follow(fan, star)  # a celebrity: merged from its own (capped) list
    posted = [await w.tweet(author) for _ in range(5) for author in (friend, star)]
    assert len(await w.store.home_ids(me)) == 4  # the window holds the newest four
    assert await w.timeline(me, page=3) == posted[::-1]  # all ten, in order, once


async def test_a_followed_celebritys_lost_list_is_filled_again_on_read() -> None:
    w = world(threshold=2)
    star, fan, other = (w.users.add_user(n) for n in ("s", "f", "o"))
    await w.timeline(fan)
    await w.follow(fan, star)
    await w.follow(other, star)
    tweets = [await w.tweet(star) for _ in range(3)]
    w.store.filled.discard(star)  # evicted, say
    w.store.lists.pop(star)
    assert await w.timeline(fan) == tweets[::-1]
    assert await w.store.is_celebrity_list_filled(star)


async def test_a_rebuild_that_fails_half_way_leaves_the_home_to_be_rebuilt() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    tweet = await w.tweet(author)

    async def flaky_source(*args, **kwargs):
        raise Unreachable("down mid-rebuild")

    real_source, w.users.home_source = w.users.home_source, flaky_source
    with pytest.raises(Unreachable):
        await w.reader.page(reader, None, 20)
    assert not await w.store.is_materialized(reader)  # not served empty from now on
    w.users.home_source = real_source
    assert await w.timeline(reader) == [tweet]


async def test_many_reads_of_a_lost_home_at_once_rebuild_it_once() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    tweet = await w.tweet(author)
    asked = []
    real_source = w.users.home_source

    async def slow_source(*args, **kwargs):
        asked.append(args)
        await asyncio.sleep(0.05)  # the reads below all arrive while this one runs
        return await real_source(*args, **kwargs)

    w.users.home_source = slow_source
    pages = await asyncio.gather(*(w.reader.page(reader, None, 20) for _ in range(10)))
    assert len(asked) == 1
    assert all(len(p.items) == 1 for p in pages)
    assert await w.store.home_ids(reader) == [tweet.bytes]


async def test_a_read_waits_for_another_processs_rebuild_and_takes_over_a_dead_one() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    tweet = await w.tweet(author)
    w.reader.rebuild_wait = 5.0
    # Another process began the rebuild: this reader must neither serve the empty home
    # nor rebuild it a second time, but wait for the other to finish.
    assert await w.store.begin_rebuild(reader, take_over=False)
    assert not await w.store.begin_rebuild(reader, take_over=False)
    calls = w.users.calls
    waiting = asyncio.ensure_future(w.reader.page(reader, None, 20))
    await asyncio.sleep(0.05)
    assert not waiting.done()
    await w.store.finish_rebuild(reader, [], tweet.bytes)
    assert len((await asyncio.wait_for(waiting, 2)).items) == 1
    assert w.users.calls == calls  # served from the other's rebuild

    # One that never finishes (its process died) is taken over after the wait.
    await w.store.abandon_rebuild(reader)
    assert await w.store.begin_rebuild(reader, take_over=False)
    w.reader.rebuild_wait = 0.05
    assert len((await asyncio.wait_for(w.reader.page(reader, None, 20), 2)).items) == 1
    assert w.users.calls > calls


async def test_made_up_callers_are_answered_from_memory_after_the_first_asking() -> None:
    w = world()
    made_up = [uuid.uuid4() for _ in range(5)]
    for caller in made_up:
        with pytest.raises(NotFound):
            await w.reader.page(caller, None, 20)
    asked = w.users.calls
    for _ in range(3):
        for caller in made_up:
            with pytest.raises(NotFound):
                await w.reader.page(caller, None, 20)
    assert w.users.calls == asked  # no more calls to the source of truth
    w.reader.unknown_ttl, w.reader._unknown = 0.0, {}  # memory gone: asked again
    with pytest.raises(NotFound):
        await w.reader.page(made_up[0], None, 20)
    assert w.users.calls == asked + 1


@pytest.mark.parametrize("removal", ["delete", "unfollow"])
async def test_a_removal_that_lands_during_a_rebuild_is_not_undone_by_it(removal: str) -> None:
    # The rebuild reads the source, then the removal commits and its event is applied
    # while the rebuild has yet to land: what it read must not bring the tweet back.
    w = world()
    author, other, reader = (w.users.add_user(n) for n in ("a", "o", "r"))
    w.users.follow(reader, author)
    w.users.follow(reader, other)
    kept, gone = await w.tweet(other), await w.tweet(author)
    read_source = w.users.home_source

    async def removed_meanwhile(*args, **kwargs):
        source = await read_source(*args, **kwargs)  # the tweet still there
        w.users.home_source = read_source  # once
        if removal == "delete":
            await w.delete(author, gone)
        else:
            await w.unfollow(reader, author)
        return source

    w.users.home_source = removed_meanwhile  # type: ignore[method-assign]
    assert await w.timeline(reader) == [kept]
    assert await w.store.home_ids(reader) == [kept.bytes]  # and it stays so, in the store
