"""Reading pages against in-memory fakes: rebuilds, paging past the cached window into
the source of truth, lost celebrity lists, failed rebuilds."""

from __future__ import annotations

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

    async def flaky_recent(*args, **kwargs):
        raise Unreachable("down mid-rebuild")

    real_recent, w.users.recent_tweets = w.users.recent_tweets, flaky_recent
    with pytest.raises(Unreachable):
        await w.reader.page(reader, None, 20)
    assert not await w.store.is_materialized(reader)  # not served empty from now on
    w.users.recent_tweets = real_recent
    assert await w.timeline(reader) == [tweet]


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
