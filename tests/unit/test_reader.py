"""Reading pages against in-memory fakes: rebuilds, paging past the cached window into
the source of truth, lost celebrity lists, failed rebuilds."""

from __future__ import annotations

import asyncio
import uuid

import msgspec
import pytest
from prometheus_client import REGISTRY

from shared_schemas.internal_api import TweetItem
from tests.fakes import Unreachable
from tests.unit.services import world
from timeline.domain.errors import NotFound
from timeline.services.reader import REPAIR_KINDS


async def test_a_home_missing_from_the_store_is_rebuilt_from_the_source_on_read() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    posted = [await w.tweet(author) for _ in range(4)]
    assert not await w.store.is_materialized(reader)
    assert await w.timeline(reader) == posted[::-1]
    assert await w.store.is_materialized(reader)


def _voided(kind: str) -> float:
    return REGISTRY.get_sample_value("timeline_rebuilds_voided_total", {"list": kind}) or 0.0


def _slowed(call, asked: list):
    """`call`, each call counted in `asked`, and slow enough that the reads started with
    it all arrive while it runs."""

    async def slow(*args, **kwargs):
        asked.append(args)
        await asyncio.sleep(0.05)
        return await call(*args, **kwargs)

    return slow


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
    asked: list = []
    w.users.home_source = _slowed(w.users.home_source, asked)  # type: ignore[method-assign]
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
    w.store.lose_everything()
    assert await w.store.begin_rebuild(reader, take_over=False)
    w.reader.rebuild_wait = 0.05
    assert len((await asyncio.wait_for(w.reader.page(reader, None, 20), 2)).items) == 1
    assert w.users.calls > calls


def _repairs() -> dict[str, tuple[float, float]]:
    """Per repair: how many reads waited on it, and for how long in all (seconds)."""
    found = {}
    for repair in REPAIR_KINDS:
        labels = {"repair": repair}
        count = REGISTRY.get_sample_value("timeline_read_repair_seconds_count", labels) or 0.0
        found[repair] = (count, REGISTRY.get_sample_value("timeline_read_repair_seconds_sum", labels) or 0.0)
    return found


def _grew(before: dict[str, tuple[float, float]]) -> dict[str, tuple[float, float]]:
    """Per repair: reads and seconds added since `before`."""
    return {k: (c - before[k][0], t - before[k][1]) for k, (c, t) in _repairs().items()}


async def test_what_reads_waited_on_is_counted_once_a_read_by_repair_and_a_warm_read_waits_on_nothing() -> None:
    # After a lost Redis nearly every read waits on a repair: operators see which, and
    # for how long (timeline_read_repair_seconds).
    w = world(threshold=2)
    author, star, fan, reader = (w.users.add_user(n) for n in ("a", "s", "f", "r"))
    w.users.follow(reader, author)
    await w.tweet(author)

    before = _repairs()
    await w.reader.page(reader, None, 20)  # a lost home: rebuilt here
    grew = _grew(before)
    assert grew["rebuild"][0] == 1 and grew["another"] == grew["celebrities"] == (0, 0)
    before = _repairs()
    await w.reader.page(reader, None, 20)  # warm: nothing
    assert _grew(before) == {k: (0, 0) for k in REPAIR_KINDS}

    # Another process's rebuild, landed 50 ms later: one read, however many polls, for
    # at least that long.
    w.store.lose_everything()
    assert await w.store.begin_rebuild(reader, take_over=False)
    before = _repairs()
    waiting = asyncio.ensure_future(w.reader.page(reader, None, 20))
    await asyncio.sleep(0.05)
    await w.store.finish_rebuild(reader, [], b"")
    await asyncio.wait_for(waiting, 2)
    grew = _grew(before)
    assert grew["another"][0] == 1 and grew["another"][1] >= 0.04
    assert grew["rebuild"] == grew["celebrities"] == (0, 0)

    await w.follow(reader, star)
    await w.follow(fan, star)  # a celebrity now: merged from its own list
    await w.reader.page(reader, None, 20)
    await w.store.forget_celebrity_list(star)  # lost
    before = _repairs()
    await w.reader.page(reader, None, 20)
    grew = _grew(before)
    assert grew["celebrities"][0] == 1 and grew["rebuild"] == grew["another"] == (0, 0)


async def test_a_repair_that_fails_is_counted_as_waited_on() -> None:
    # A source that is down during a cold start: the reads that failed waited too.
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)

    async def down(*args, **kwargs):
        raise Unreachable("the Users Service is down")

    w.users.home_source = down  # type: ignore[method-assign]
    before = _repairs()
    with pytest.raises(Unreachable):
        await w.reader.page(reader, None, 20)
    assert _grew(before)["rebuild"][0] == 1


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
    voided = _voided("home")
    assert await w.timeline(reader) == [kept]
    assert await w.store.home_ids(reader) == [kept.bytes]  # and it stays so, in the store
    assert _voided("home") == voided + 1  # what operators see of it


async def _celebrity_with_fans(w, fans: int = 3) -> tuple[uuid.UUID, list[uuid.UUID], list[uuid.UUID]]:
    """A celebrity (threshold 3) with tweets, and fans whose homes are in the store."""
    star = w.users.add_user("s")
    readers = [w.users.add_user(f"f{i}") for i in range(fans)]
    for reader in readers:
        w.users.follow(reader, star)
    for reader in readers:  # their homes merge the celebrity's list from now on
        await w.timeline(reader)
    tweets = [await w.tweet(star) for _ in range(4)]
    return star, readers, tweets


async def test_readers_of_a_lost_celebrity_list_fill_it_once_and_wait_for_another_processs_fill() -> None:
    w = world()
    star, readers, tweets = await _celebrity_with_fans(w)
    await w.store.forget_celebrity_list(star)  # lost, say
    asked: list = []
    real_recent = w.users.recent_tweets
    w.users.recent_tweets = _slowed(real_recent, asked)  # type: ignore[method-assign]
    pages = await asyncio.gather(*(w.reader.page(r, None, 20) for r in readers for _ in range(3)))
    assert len(asked) == 1  # one fill in this process, however many readers asked
    assert [len(p.items) for p in pages] == [4] * 9

    # Another process began filling it: this reader neither merges the list it is
    # filling (only what fan-out pushed since: a page that says nothing older exists)
    # nor fills it again, but waits; and takes over a fill that never lands.
    await w.store.forget_celebrity_list(star)
    assert await w.store.begin_celebrity_list(star)
    newest = await w.tweet(star)  # fan-out meanwhile: in the list being filled
    waiting = asyncio.ensure_future(w.reader.page(readers[0], None, 20))
    await asyncio.sleep(0.05)
    assert not waiting.done() and len(asked) == 1
    await w.store.finish_celebrity_list(star, await real_recent([star], None, 800))
    assert [t.tweet_id for t in await _items(waiting)] == [newest, *tweets[::-1]]
    assert len(asked) == 1  # served from the other's fill

    await w.store.forget_celebrity_list(star)
    assert await w.store.begin_celebrity_list(star)  # its process dies
    w.celebrities.fill_wait = 0.05
    assert len((await asyncio.wait_for(w.reader.page(readers[0], None, 20), 2)).items) == 5
    assert len(asked) == 2


async def test_a_delete_that_lands_during_a_celebrity_list_fill_is_not_undone_by_it() -> None:
    w = world()
    star, readers, tweets = await _celebrity_with_fans(w)
    await w.store.forget_celebrity_list(star)
    real_recent = w.users.recent_tweets

    async def deleted_meanwhile(*args, **kwargs):
        found = await real_recent(*args, **kwargs)  # the tweet still there
        w.users.recent_tweets = real_recent  # once
        await w.delete(star, tweets[-1])
        return found

    w.users.recent_tweets = deleted_meanwhile  # type: ignore[method-assign]
    voided = _voided("celebrity")
    assert await w.timeline(readers[0]) == tweets[-2::-1]
    assert _voided("celebrity") == voided + 1
    assert await w.store.celebrity_ids(star) == [t.bytes for t in tweets[-2::-1]]


async def _items(waiting: asyncio.Future) -> list:
    page = await asyncio.wait_for(waiting, 2)
    return [msgspec.json.decode(raw, type=TweetItem) for raw in page.items]


async def test_a_page_whose_home_every_rebuild_loses_to_a_removal_comes_from_the_source() -> None:
    # A removal reaches the home during each rebuild (a burst of deletes): the reader
    # gives up on the store for this page and serves it from the source of truth,
    # rather than an empty page that says the timeline ends.
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    posted = [await w.tweet(author) for _ in range(8)]
    read_source = w.users.home_source

    async def a_delete_each_time(*args, **kwargs):
        source = await read_source(*args, **kwargs)
        await w.delete(author, posted.pop(0))  # the oldest left
        return source

    w.users.home_source = a_delete_each_time  # type: ignore[method-assign]
    page = await w.reader.page(reader, None, 3)
    assert [msgspec.json.decode(raw, type=TweetItem).tweet_id for raw in page.items] == posted[::-1][:3]
    assert page.older is not None  # and more below


async def test_a_celebrity_demoted_then_promoted_again_misses_nothing_posted_between() -> None:
    w = world(threshold=3)
    star, *fans = (w.users.add_user(n) for n in ("s", "1", "2", "3"))
    for fan in fans:
        await w.timeline(fan)
        await w.follow(fan, star)
    first = await w.tweet(star)  # a celebrity's: in its list
    await w.unfollow(fans[2], star)  # demoted: its list goes into the homes
    between = await w.tweet(star)  # fanned out
    await w.follow(fans[2], star)  # promoted again: its list filled afresh
    last = await w.tweet(star)
    newcomer = w.users.add_user("n")
    w.users.follow(newcomer, star)  # a home rebuilt now merges the list
    assert await w.timeline(newcomer) == [last, between, first]


async def test_an_unfollowed_celebrity_stays_out_when_a_rebuild_lands_mid_unfollow() -> None:
    # The rebuild read the graph while the reader still followed the celebrity, and
    # lands while the worker applies the unfollow, right after the celebrity left the
    # home's set. Its landing must not put the celebrity back.
    w = world()
    star, readers, tweets = await _celebrity_with_fans(w)
    reader = readers[0]
    w.store.homes.pop(reader)  # lost: its next read rebuilds it
    w.store.materialized.discard(reader)
    source_read, landing_may_go = asyncio.Event(), asyncio.Event()
    read_source = w.users.home_source

    async def slow_source(*args, **kwargs):
        source = await read_source(*args, **kwargs)  # the star still followed
        source_read.set()
        await landing_may_go.wait()
        return source

    w.users.home_source = slow_source  # type: ignore[method-assign]
    reading = asyncio.ensure_future(w.reader.page(reader, None, 20))
    await source_read.wait()
    w.users.home_source = read_source  # type: ignore[method-assign]
    srem = w.store.unfollow_celebrity

    async def srem_then_land(users: list[uuid.UUID], celebrity: uuid.UUID) -> None:
        await srem(users, celebrity)
        landing_may_go.set()
        for _ in range(100):  # until the rebuild has tried to land
            if reader not in w.store.rebuilding:
                break
            await asyncio.sleep(0)

    w.store.unfollow_celebrity = srem_then_land  # type: ignore[method-assign]
    await w.unfollow(reader, star)
    await asyncio.wait_for(reading, 2)
    assert star not in w.store.followed.get(reader, set())
    assert await w.timeline(reader) == []
    assert tweets  # the star's, which the reader no longer sees


async def test_a_tweet_deleted_but_not_yet_out_of_the_homes_shortens_a_page_never_ends_the_timeline() -> None:
    # A delete takes the tweet's item at once; its id leaves the followers' homes with the
    # fan-out, later. A page that read it meanwhile must still say that more follow.
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    await w.timeline(reader)  # a home in the store
    await w.follow(reader, author)
    posted = [await w.tweet(author) for _ in range(10)]
    gone = posted[6]  # the fourth newest: on the first page of three (with the extra one read)
    del w.users.tweets[gone]
    await w.store.delete_item(gone)  # the delete's own part; the homes still hold the id
    assert gone.bytes in await w.store.home_ids(reader)
    assert await w.timeline(reader, page=3) == [t for t in posted[::-1] if t != gone]  # all nine, once
