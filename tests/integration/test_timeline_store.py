"""The read model's store, one behaviour test for every implementation of the port: the
in-memory fake the unit tests use, the Redis store on a single Redis and on a Redis
Cluster. Idempotent, ordered, capped pushes; pages that start after their cursor, merge
the followed celebrities, say where the cached window ends, and bring their items."""

from __future__ import annotations

import asyncio
import os
import random
import time
import uuid

import pytest

from shared_schemas.ids import new_id
from shared_schemas.internal_api import TweetItem
from tests.fakes import FakeTimelineStore
from timeline.adapters.store import keys
from timeline.adapters.store.redis_store import RedisTimelineStore
from timeline.domain import items as item_codec
from timeline.services.ports import TimelineStore


@pytest.fixture(params=["fake", "scratch_redis", "cluster_redis"])
def make_store(request):
    """A factory of stores with a given cap, of the kind the test is parametrized on."""
    if request.param == "fake":
        return lambda max_items=5: FakeTimelineStore(max_items)
    redis = request.getfixturevalue(request.param)
    return lambda max_items=5: RedisTimelineStore(redis, max_items, ttl_seconds=600, item_ttl_seconds=600)


@pytest.fixture
def store(make_store) -> TimelineStore:
    return make_store()


def _ids(n: int) -> list[uuid.UUID]:
    return sorted((new_id() for _ in range(n)), reverse=True)  # newest first


def _u(raw: list[bytes]) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=b) for b in raw]


async def test_a_home_that_nobody_reads_is_not_written(store: TimelineStore) -> None:
    user = uuid.uuid4()
    await store.push_to_homes([user], _ids(1))
    assert await store.home_ids(user) == [] and not await store.is_materialized(user)


async def test_one_fan_out_reaches_every_reading_home_among_hundreds_and_no_other(store: TimelineStore) -> None:
    users = [uuid.uuid4() for _ in range(250)]  # more than one push call's worth of homes
    readers = set(random.Random(7).sample(users, 120))
    newer, older = _ids(2)
    for user in readers:
        await store.begin_rebuild(user, [])
        await store.finish_rebuild(user)  # whole: readers read it
    await store.push_to_homes(users, [older])
    await store.push_to_homes(users, [newer, older])  # a redelivery with a newer one
    for user in users:
        assert _u(await store.home_ids(user)) == ([newer, older] if user in readers else [])


async def test_duplicates_and_late_arrivals_land_once_in_order(store: TimelineStore) -> None:
    user = uuid.uuid4()
    newest, middle, oldest = _ids(3)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    for tweet_id in (middle, newest, middle, oldest, newest):
        await store.push_to_homes([user], [tweet_id])
    assert _u(await store.home_ids(user)) == [newest, middle, oldest]


async def test_late_ids_land_in_order_near_the_top_and_deep_down(make_store) -> None:
    # A late id is looked for among a list's newest 16 first, and past them by a
    # binary search: both places, and a repeat of an id in each (the last of the 16 and
    # the first past them too), which changes nothing.
    store = make_store(max_items=50)
    user = uuid.uuid4()
    ids = _ids(40)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, [t for i, t in enumerate(ids) if i not in (5, 35)])
    for tweet_id in (ids[35], ids[5], ids[35], ids[5], ids[15], ids[16], ids[39]):
        await store.push_to_homes([user], [tweet_id])
    assert _u(await store.home_ids(user)) == ids


async def test_late_ids_of_one_millisecond_land_in_order(make_store) -> None:
    # push.lua orders ids by their millisecond first and by their other bytes only
    # within one: ids of a few milliseconds, several in each, some a byte apart at the
    # end, arriving late (among the newest 16 and deeper) and twice.
    store = make_store(max_items=50)
    user = uuid.uuid4()
    base = int(time.time() * 1000)
    tails = [bytes(10), b"\x00" * 9 + b"\x01", b"\x80" + bytes(9), os.urandom(10), os.urandom(10)]
    ids = sorted(
        (uuid.UUID(bytes=(base + ms).to_bytes(6, "big") + tail) for ms in range(8) for tail in tails), reverse=True
    )
    # (ids[5k+3] end in ...01, one byte above ids[5k+4]: late both near the top and deep)
    late = [ids[1], ids[2], ids[8], ids[14], ids[30], ids[31], ids[33], ids[39]]
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, [t for t in ids if t not in late])
    for tweet_id in [*late, *late[::-1]]:
        await store.push_to_homes([user], [tweet_id])
    assert _u(await store.home_ids(user)) == ids


async def test_the_home_keeps_only_the_newest_max_items(store: TimelineStore) -> None:
    user = uuid.uuid4()
    ids = _ids(8)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, ids[::-1])  # oldest first, the worst order
    assert _u(await store.home_ids(user)) == ids[:5]
    await store.push_to_homes([user], [ids[7]])  # older than everything kept: skipped
    assert _u(await store.home_ids(user)) == ids[:5]


async def test_many_ids_at_once_merge_with_what_the_home_holds(make_store) -> None:
    store = make_store(30)
    user = uuid.uuid4()
    ids = _ids(40)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    for tweet_id in ids[::3]:  # some fanned out already
        await store.push_to_homes([user], [tweet_id])
    given = [t for i, t in enumerate(ids) if i % 3]
    random.Random(3).shuffle(given)
    await store.merge_into_home(user, given + given[:5])  # repeats too
    assert _u(await store.home_ids(user)) == ids[:30]  # the newest 30 of everything, once each


async def test_pages_start_strictly_after_the_cursor(store: TimelineStore) -> None:
    user = uuid.uuid4()
    ids = _ids(5)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, ids)
    first = await store.read_page(user, None, 2)
    assert _u(first.ids) == ids[:2]
    second = await store.read_page(user, uuid.UUID(bytes=first.ids[-1]), 2)
    assert _u(second.ids) == ids[2:4]
    await store.unpush_from_homes([user], [ids[2]])
    again = await store.read_page(user, ids[2], 2)  # a cursor whose id has left the home
    assert _u(again.ids) == ids[3:5]


async def test_a_page_merges_the_followed_celebrities_and_brings_its_items(store: TimelineStore) -> None:
    plain, fan, star, quiet = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = _ids(6)
    home, theirs = ids[1::2], ids[0::2]
    await store.put_items([TweetItem(t, star, "s", str(ids.index(t)), "") for t in ids if t != home[1]])
    # ids[0] was fanned out to the homes before `star` became a celebrity: in both lists.
    await store.begin_celebrity_list(star)
    await store.finish_celebrity_list(star, [])  # filled (empty)
    await store.push_to_celebrity(star, theirs)
    await store.push_to_celebrity(quiet, _ids(1))  # `quiet`'s list is not filled: ignored
    await store.begin_rebuild(plain, [])
    await store.finish_rebuild(plain)  # whole: readers read it
    await store.begin_rebuild(fan, [star, quiet])
    await store.finish_rebuild(fan)  # whole: readers read it
    for user in (plain, fan):
        await store.merge_into_home(user, [ids[0], *home])
    page = await store.read_page(plain, None, 4)
    assert _u(page.ids) == [ids[0], *home] and not page.window_ended and page.unfilled == []
    assert [raw and TweetItem.__name__ for raw in page.items] == ["TweetItem", "TweetItem", None, "TweetItem"]
    merged = await store.read_page(fan, None, 4)
    assert _u(merged.ids) == ids[:4] and merged.unfilled == [quiet]
    assert [raw is None for raw in merged.items] == [False, False, False, True]  # home[1] = ids[3]
    after = await store.read_page(fan, ids[1], 4)  # the cursor applies to every list
    assert _u(after.ids) == ids[2:]
    empty = await store.read_page(plain, ids[-1], 4)  # past the end: nothing to read
    assert empty.ids == [] and empty.items == [] and not empty.window_ended


async def test_a_page_says_when_the_cached_window_ends(store: TimelineStore) -> None:
    """Older tweets exist that a capped list no longer holds: the reader must go on from
    the source of truth; a list below its cap is the whole story."""
    full, short = uuid.uuid4(), uuid.uuid4()
    ids = _ids(5)
    for user, held in ((full, ids), (short, ids[:3])):
        await store.begin_rebuild(user, [])
        await store.finish_rebuild(user)  # whole: readers read it
        await store.merge_into_home(user, held)
    whole = await store.read_page(full, None, 5)
    assert len(whole.ids) == 5 and not whole.window_ended
    # Past the cursor, two left of five: the page keeps what is certainly whole (newer
    # than where the list ran out) and says the rest comes from the source of truth.
    end = await store.read_page(full, ids[2], 5)
    assert _u(end.ids) == [ids[3]] and end.window_ended
    below = await store.read_page(short, None, 5)
    assert len(below.ids) == 3 and not below.window_ended
    unread = await store.read_page(uuid.uuid4(), None, 5)
    assert not unread.materialized and unread.ids == []


async def test_a_full_list_that_loses_ids_still_says_its_window_ends(store: TimelineStore) -> None:
    """A list at its cap that loses ids (a deleted tweet, an unfollow) is still short of
    the older tweets it no longer holds: its pages say where the window ends, and no id
    older than its last is let in below it, where the ids between are missing. A list
    below its cap that loses one stays the whole story."""
    fan, star, short = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = _ids(12)
    for user, held in ((fan, ids[1:6]), (short, ids[1:4])):
        await store.begin_rebuild(user, [])
        await store.finish_rebuild(user)  # whole: readers read it
        await store.merge_into_home(user, held)
    await store.unpush_from_homes([fan, short], [ids[2]])
    page = await store.read_page(fan, None, 5)  # the last id is the window's edge: not served
    assert _u(page.ids) == [ids[1], ids[3], ids[4]] and page.window_ended
    assert _u((await store.read_page(fan, ids[3], 5)).ids) == [ids[4]]
    assert (await store.read_newer(fan, ids[7], 2)).window_ended  # nothing at or below it
    await store.push_to_homes([fan], [ids[6]])  # older than its last: the gap is unknown
    await store.merge_into_home(fan, [ids[0], ids[7]])  # the newer goes on top
    assert _u(await store.home_ids(fan)) == [ids[0], ids[1], *ids[3:6]]
    whole = await store.read_page(short, None, 5)
    assert _u(whole.ids) == [ids[1], ids[3]] and not whole.window_ended

    # A celebrity's list likewise: the fan's page stops where the list runs out.
    reader = uuid.uuid4()
    await store.begin_celebrity_list(star)
    await store.finish_celebrity_list(star, [])  # filled (empty)
    await store.push_to_celebrity(star, ids[6:11])  # five: at the cap
    await store.unpush_from_celebrity(star, [ids[7]])
    await store.push_to_celebrity(star, [ids[11]])  # older than its last: not let in
    assert _u(await store.celebrity_ids(star)) == [ids[6], *ids[8:11]]
    await store.begin_rebuild(reader, [star])
    await store.finish_rebuild(reader)
    await store.merge_into_home(reader, [ids[0], ids[11]])
    page = await store.read_page(reader, None, 10)
    assert _u(page.ids) == [ids[0], ids[6], *ids[8:10]] and page.window_ended


async def test_many_ids_merged_into_a_full_list_that_lost_ids_stop_at_its_last(make_store) -> None:
    """The same rule for many ids at once (a backfill after a follow): none older than
    the last id of a list that was full."""
    store = make_store(20)
    user = uuid.uuid4()
    ids = _ids(44)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)
    await store.merge_into_home(user, ids[10:30])  # at the cap
    await store.unpush_from_homes([user], ids[11:16])  # fifteen left, room for five
    await store.merge_into_home(user, [*ids[7:10], *ids[30:44]])  # three newer, fourteen older
    assert _u(await store.home_ids(user)) == [*ids[7:11], *ids[16:30]]


async def test_a_part_of_a_longer_story_cuts_the_home_at_its_oldest(make_store) -> None:
    """Ids that are only the newest of their authors' (a backfill of a prolific
    followee): the home keeps nothing older than the oldest of them and says its window
    ends there; newer ids and later tweets stay and land as ever."""
    store = make_store(20)
    user = uuid.uuid4()
    ids = _ids(12)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)
    await store.merge_into_home(user, ids[0:12:2])  # six: the whole story so far
    await store.push_to_homes([user], ids[3:8:2], partial=True)  # three, of more
    assert _u(await store.home_ids(user)) == [ids[0], ids[2], *ids[3:8]]
    page = await store.read_page(user, ids[4], 10)  # the last id is the window's edge
    assert _u(page.ids) == [ids[5], ids[6]] and page.window_ended
    await store.push_to_homes([user], [ids[1]])  # late, above the cut: lands
    await store.push_to_homes([user], [ids[9]])  # below it: not let in
    assert _u(await store.home_ids(user)) == ids[0:8]
    # A part older than everything a whole home holds: below its last entry the home
    # was the whole story, so the part lands there, and the home is cut at its oldest.
    fresh = uuid.uuid4()
    await store.begin_rebuild(fresh, [])
    await store.finish_rebuild(fresh)
    await store.merge_into_home(fresh, ids[0:2])
    await store.push_to_homes([fresh], ids[3:6], partial=True)
    assert _u(await store.home_ids(fresh)) == [*ids[0:2], *ids[3:6]]
    assert (await store.read_page(fresh, ids[4], 10)).window_ended


async def test_a_celebrity_list_at_its_cap_cuts_the_merged_page_where_it_ends(store: TimelineStore) -> None:
    """A followed celebrity's full list that runs out mid-page: below its last id the
    home's ids are no longer the whole story, so the page stops there."""
    fan, star = uuid.uuid4(), uuid.uuid4()
    ids = _ids(10)
    await store.begin_celebrity_list(star)
    await store.finish_celebrity_list(star, [])  # filled (empty)
    await store.push_to_celebrity(star, ids[0:10:2])  # five: at the cap
    await store.begin_rebuild(fan, [star])
    await store.finish_rebuild(fan)  # whole: readers read it
    await store.merge_into_home(fan, ids[1:10:2])
    page = await store.read_page(fan, ids[5], 4)
    assert _u(page.ids) == [ids[6], ids[7]] and page.window_ended


async def test_a_failed_rebuild_or_fill_leaves_nothing_marked(store: TimelineStore) -> None:
    user, star = uuid.uuid4(), uuid.uuid4()
    await store.begin_rebuild(user, [])
    await store.abandon_rebuild(user)
    assert not (await store.read_page(user, None, 5)).materialized
    assert await store.begin_celebrity_list(star)
    assert not await store.is_celebrity_list_filled(star)  # being filled
    await store.abandon_celebrity_list(star)
    assert not await store.is_celebrity_list_filled(star)


async def test_rebuilds_at_once_each_land_their_own_home_and_items(make_store) -> None:
    # On a single Redis, the rebuilds that wait meanwhile go in one round trip.
    store = make_store(max_items=50)
    users = [uuid.uuid4() for _ in range(6)]
    runs = {user: _ids(20) for user in users}  # more than 16: the bulk merge
    began = await asyncio.gather(
        *(store.begin_rebuild(user, [], take_over=False) for user in users),
        store.begin_rebuild(users[0], [], take_over=False),  # another reader of a home already begun
    )
    assert began == [True] * len(users) + [False]
    items = {user: [TweetItem(runs[user][0], user, "name", f"newest of {user}", "")] for user in users}
    await asyncio.gather(
        *(store.finish_rebuild(user, [], b"".join(t.bytes for t in runs[user]), items[user]) for user in users)
    )
    for user in users:
        page = await store.read_page(user, None, 30)
        assert page.materialized and not page.rebuilding and _u(page.ids) == runs[user]
        assert await store.get_items([runs[user][0].bytes]) == [item_codec.encode(items[user][0])]


async def test_a_rebuild_that_a_removal_reached_meanwhile_does_not_land(make_store) -> None:
    # The rebuild read the source before a delete (or an unfollow) committed, and the
    # removal reached the home while it was being rebuilt: landing would bring back what
    # was removed. Fan-out pushes meanwhile are in the source too; they go with it.
    store = make_store(max_items=50)
    user, other, unfollower = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    run = _ids(20)  # more than 16: the bulk merge
    deleted, late = run[3], new_id()
    for home in (user, other, unfollower):
        assert await store.begin_rebuild(home, [], take_over=False)
    await store.push_to_homes([user], [late])  # fan-out meanwhile
    await store.unpush_from_homes([user], [deleted])  # the delete's, from the fan-out
    await store.unpush_from_homes([unfollower], [])  # an unfollow's, none of theirs held yet
    assert (await store.read_page(user, None, 5)).rebuilding  # readers still wait
    assert not await store.begin_rebuild(user, [], take_over=False)  # and rebuild nothing meanwhile
    for home in (user, other, unfollower):
        await store.finish_rebuild(home, [], b"".join(t.bytes for t in run))
    assert _u((await store.read_page(other, None, 30)).ids) == run  # no removal reached it
    for home in (user, unfollower):
        page = await store.read_page(home, None, 30)
        assert not page.materialized and not page.rebuilding and page.ids == []  # its next read rebuilds it
    assert await store.begin_rebuild(user, [], take_over=False)
    await store.finish_rebuild(user, [], b"".join(t.bytes for t in [late, *run] if t != deleted))
    assert _u((await store.read_page(user, None, 30)).ids) == [late, *(t for t in run if t != deleted)]


async def test_a_celebrity_list_being_filled_is_not_merged_until_it_lands(make_store) -> None:
    # Merged while being filled, the list would hold only what fan-out pushed since, and
    # a page would say the author has nothing older. Its readers are told it is not
    # filled (they wait for the fill); a second filler is kept out; a removal that
    # reaches it meanwhile spoils the landing (what the fill read may predate it).
    store = make_store(max_items=50)
    fan, star, other = uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    older, deleted, late = _ids(20)[::-1], new_id(), new_id()  # older: oldest first
    await store.begin_rebuild(fan, [star, other])
    await store.finish_rebuild(fan)
    for author in (star, other):
        assert await store.begin_celebrity_list(author)
        assert not await store.begin_celebrity_list(author)  # one filler at a time
        assert not await store.is_celebrity_list_filled(author)
        await store.push_to_celebrity(author, [late])  # fan-out meanwhile: kept
    for page in (await store.read_page(fan, None, 30), await store.read_newer(fan, older[0], 30)):
        assert sorted(page.unfilled) == sorted([star, other]) and page.ids == []
    await store.unpush_from_celebrity(star, [deleted])  # the author deletes one the fill read
    read = [TweetItem(t, star, "s", "", "") for t in [deleted, *older[::-1]]]
    assert not await store.finish_celebrity_list(star, read)
    assert await store.finish_celebrity_list(other, read)
    assert _u(await store.celebrity_ids(other)) == [late, deleted, *older[::-1]]
    assert not await store.is_celebrity_list_filled(star)  # dropped: filled again from a fresh read
    page = await store.read_page(fan, None, 30)
    assert page.unfilled == [star] and _u(page.ids) == [late, deleted, *older[::-1]][:30]
    assert await store.begin_celebrity_list(star)
    assert await store.finish_celebrity_list(star, read[1:])
    assert _u((await store.read_page(fan, None, 30)).ids) == [late, deleted, *older[::-1]][:30]


async def test_celebrity_status_changes_are_noticed_once(store: TimelineStore) -> None:
    author = uuid.uuid4()
    assert await store.mark_celebrity(author, True) and not await store.mark_celebrity(author, True)
    assert await store.mark_celebrity(author, False) and not await store.mark_celebrity(author, False)


async def test_the_tweet_cache_keeps_and_forgets_items(store: TimelineStore) -> None:
    a, b = _ids(2)
    await store.put_items([TweetItem(a, uuid.uuid4(), "n", "one", ""), TweetItem(b, uuid.uuid4(), "n", "two", "")])
    found = await store.get_items([a.bytes, b.bytes, new_id().bytes])
    assert [raw is not None for raw in found] == [True, True, False] and b'"text":"two"' in found[1]
    await store.delete_item(a)
    assert await store.get_items([a.bytes]) == [None]


# -- the Redis store only --------------------------------------------------------------
@pytest.fixture
def redis_store(any_redis) -> RedisTimelineStore:
    return RedisTimelineStore(any_redis, 5, ttl_seconds=600, item_ttl_seconds=600)


async def test_a_home_list_expires_with_its_marker_and_a_rebuild_starts_clean(redis_store, any_redis) -> None:
    user = uuid.uuid4()
    stale, fresh = _ids(2)
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user)  # whole: readers read it
    await redis_store.push_to_homes([user], [stale])
    home = keys.home(user)
    assert 0 < await any_redis.ttl(home.ids) <= await any_redis.ttl(home.marker) <= 600
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user)  # whole: readers read it
    await redis_store.merge_into_home(user, [fresh])
    assert _u(await redis_store.home_ids(user)) == [fresh]


async def test_a_full_home_is_trimmed_past_its_slack_and_holds_every_id_in_it(any_redis) -> None:
    """A full list is trimmed back to its cap once it is a 25th past it, not on every
    push; what it holds past the cap is as exact as the rest: a late id lands there,
    and a page that reaches it reads it."""
    store = RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600)  # a slack of 2
    user = uuid.uuid4()
    ids = _ids(62)
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.merge_into_home(user, [*ids[10:59], ids[60]])  # at its cap, ids[59] late
    await store.push_to_homes([user], [ids[9]])  # one past the cap: kept
    await store.push_to_homes([user], [ids[59]])  # late, past the cap: lands in order
    assert _u(await store.home_ids(user)) == ids[9:61]
    page = await store.read_page(user, ids[55], 10)
    # Down to the late id; the last is the window's edge, which pages never serve.
    assert _u(page.ids) == ids[56:60] and page.window_ended
    newer = await store.read_newer(user, ids[60], 3)  # a refresh from the list's last id
    assert _u(newer.ids) == ids[57:60] and not newer.window_ended
    await store.push_to_homes([user], [ids[8]])  # past the slack: back to the newest 50
    assert _u(await store.home_ids(user)) == ids[8:58]


async def test_what_a_given_up_rebuild_left_is_never_read(redis_store, any_redis) -> None:
    """push.lua asks a home's marker only when its list is empty: a list that a rebuild
    given up left behind still takes pushes, so no reader and no later rebuild may see
    it."""
    user = uuid.uuid4()
    newest, pushed, early = _ids(3)
    await redis_store.begin_rebuild(user, [])
    await redis_store.push_to_homes([user], [early])  # fanned out during the rebuild: kept
    await redis_store.abandon_rebuild(user)  # the rebuild failed: its marker goes, its list stays
    await redis_store.push_to_homes([user], [pushed])
    assert await any_redis.exists(keys.home(user).ids)  # the case under test
    assert not (await redis_store.read_page(user, None, 5)).materialized
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user, [], newest.bytes)
    assert _u((await redis_store.read_page(user, None, 5)).ids) == [newest]


async def test_a_list_whose_marker_was_evicted_stops_taking_pushes_and_goes(any_redis) -> None:
    """Under memory pressure Redis may evict a home's marker and leave its list: the
    pushes that no longer ask the marker find out within 32 entries, and drop the list
    instead of keeping it growing, and in use, until its TTL."""
    redis_store = RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600)  # room for 32
    user = uuid.uuid4()
    ids = _ids(41)
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user)  # whole: readers read it
    await redis_store.push_to_homes([user], [ids[40]])
    await any_redis.delete(keys.home(user).marker)  # as volatile-lru would
    for tweet_id in ids[39::-1]:  # one at a time, oldest first, as fan-out brings them
        await redis_store.push_to_homes([user], [tweet_id])
        assert await any_redis.llen(keys.home(user).ids) < 32
    assert not await any_redis.exists(keys.home(user).ids)
    assert not (await redis_store.read_page(user, None, 5)).materialized


async def test_entries_are_compact(scratch_redis) -> None:
    """About 20 bytes per entry is the aim; the benchmark measures it at scale."""
    user = uuid.uuid4()
    big = RedisTimelineStore(scratch_redis, 800, ttl_seconds=600, item_ttl_seconds=600)
    await big.begin_rebuild(user, [])
    await big.finish_rebuild(user)  # whole: readers read it
    await big.merge_into_home(user, _ids(800))
    used = await scratch_redis.memory_usage(keys.home(user).ids)
    assert used / 800 < 24, used / 800


async def test_the_scripts_come_back_after_the_server_forgets_them(redis_store, any_redis) -> None:
    user = uuid.uuid4()
    ids = _ids(2)
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user)  # whole: readers read it
    await any_redis.script_flush()  # as after a Redis restart or a failover
    await redis_store.push_to_homes([user], [ids[1]])
    await any_redis.script_flush()
    await redis_store.merge_into_home(user, [ids[0]])
    assert _u(await redis_store.home_ids(user)) == ids
    await any_redis.script_flush()
    page = await redis_store.read_page(user, None, 5)  # the read path loads its script itself
    assert page.materialized and _u(page.ids) == ids
    await any_redis.script_flush()
    others = [uuid.uuid4() for _ in range(5)]
    # Marks that meet NOSCRIPT go again once each: a mark run twice would find its own
    # first and say another reader is at it.
    assert await asyncio.gather(*(redis_store.begin_rebuild(o, [], take_over=False) for o in others)) == [True] * 5
    other = others[0]
    await any_redis.script_flush()
    await redis_store.begin_rebuild(other, [])  # loads them all: the rebuild's landing finds them
    item = TweetItem(ids[0], other, "name", "text", "")
    await redis_store.finish_rebuild(other, [], b"".join(t.bytes for t in ids), [item])
    assert _u(await redis_store.home_ids(other)) == ids
    assert await redis_store.get_items([ids[0].bytes]) == [item_codec.encode(item)]


async def test_a_landing_that_meets_a_server_without_scripts_never_marks_the_home_whole(
    redis_store, any_redis, monkeypatch
) -> None:
    # Inside MULTI, a server that lost its scripts refuses the EVALSHAs but runs the
    # plain commands: a plain SET of the mark made the home whole with none of its ids.
    # The store runs the landing again once the scripts are back; here the process
    # "dies" first (loading them fails), and what it leaves must not be served.
    user = uuid.uuid4()
    ids = _ids(3)
    await redis_store.begin_rebuild(user, [])
    await any_redis.script_flush()

    async def dies(*_args: object) -> None:
        raise ConnectionError("the process died before loading the scripts")

    monkeypatch.setattr(any_redis, "script_load", dies)
    with pytest.raises(ConnectionError):
        await redis_store.finish_rebuild(user, [], b"".join(t.bytes for t in ids))
    monkeypatch.undo()
    page = await redis_store.read_page(user, None, 5)
    assert not page.materialized and page.rebuilding  # still being rebuilt: readers wait, then take over
    # The ids went into their own key (the plain commands ran): it lapses with the mark.
    (landing,) = await _landing_keys(any_redis, user)
    assert 0 < await any_redis.pttl(landing) <= 60_000


async def _landing_keys(redis, user: uuid.UUID) -> list[bytes]:
    """The keys a rebuild of `user`'s home put its ids into before landing them."""
    return [key async for key in redis.scan_iter(match=keys.landing(user, "*"))]


async def test_a_landing_leaves_no_key_of_its_own_behind(any_redis) -> None:
    """A rebuild's ids go into a key of their own, renamed to the home as it lands:
    whether the home lands that way, has them merged with what fan-out pushed meanwhile,
    or is refused (a removal meanwhile, or its mark lapsed), that key does not outlive
    the landing."""
    redis_store = RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600)
    homes = renamed, merged, removed, lapsed = [uuid.uuid4() for _ in range(4)]
    run, late = _ids(30), new_id()
    for home in homes:
        assert await redis_store.begin_rebuild(home, [], take_over=False)
    await redis_store.push_to_homes([merged], [late])  # fan-out meanwhile
    await redis_store.unpush_from_homes([removed], [])  # an unfollow's, meanwhile
    await any_redis.delete(keys.home(lapsed).marker)  # a rebuild slower than its mark
    landed = await asyncio.gather(*(redis_store.finish_rebuild(h, [], b"".join(t.bytes for t in run)) for h in homes))
    assert landed == [True, True, False, False]
    assert _u((await redis_store.read_page(renamed, None, 40)).ids) == run
    assert _u((await redis_store.read_page(merged, None, 40)).ids) == [late, *run]
    for home in homes:
        assert await _landing_keys(any_redis, home) == []
    # A landed home lives as long as a home does, not as long as the rebuild's mark.
    assert await any_redis.ttl(keys.home(renamed).ids) > 590


async def test_a_merge_that_fails_fails_only_its_own_home(any_redis, monkeypatch) -> None:
    """Homes landed together: one renamed in the first transaction, one whose ids wait
    for push.lua's merge in a second (fan-out pushed into it meanwhile). The second
    failing is that home's reader's error alone: the first is whole and read."""
    redis_store = RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600)
    renamed, merged = uuid.uuid4(), uuid.uuid4()
    run = _ids(20)
    for home in (renamed, merged):
        assert await redis_store.begin_rebuild(home, [], take_over=False)
    await redis_store.push_to_homes([merged], [new_id()])  # fan-out meanwhile
    land_once = redis_store._land_once

    async def second_fails(finishes, items, *, merge):
        if merge:
            raise ConnectionError("Redis went away between the two transactions")
        return await land_once(finishes, items, merge=merge)

    monkeypatch.setattr(redis_store, "_land_once", second_fails)
    landed = await asyncio.gather(
        *(redis_store.finish_rebuild(home, [], b"".join(t.bytes for t in run)) for home in (renamed, merged)),
        return_exceptions=True,
    )
    assert landed[0] is True and isinstance(landed[1], ConnectionError)
    assert _u((await redis_store.read_page(renamed, None, 40)).ids) == run
    assert (await redis_store.read_page(merged, None, 5)).rebuilding  # its reader's rebuild gives it up, or takes over


async def test_a_landing_whose_ids_are_missing_does_not_mark_the_home_whole(redis_store, any_redis) -> None:
    """whole.lua given a landing key that holds nothing (never written, or gone) lands
    nothing: a home marked whole without its ids would be served empty."""
    user = uuid.uuid4()
    assert await redis_store.begin_rebuild(user, [], take_over=False)
    home, token = keys.home(user), redis_store._tokens[user]
    script_keys = [home.marker, home.ids, home.celebrities, keys.landing(user, token)]
    assert await redis_store._whole(keys=script_keys, args=[600, token, keys.CHANGES]) == 0
    assert (await redis_store.read_page(user, None, 5)).rebuilding


async def test_a_read_renews_an_expiry_that_has_run_down(redis_store, any_redis) -> None:
    user = uuid.uuid4()
    await redis_store.begin_rebuild(user, [])
    await redis_store.finish_rebuild(user)  # whole: readers read it
    await redis_store.merge_into_home(user, _ids(1))
    await redis_store.finish_rebuild(user)
    home = keys.home(user)
    for key in (home.marker, home.ids):
        # As if the reader had been away for days (more left than a rebuild's mark, which
        # a read does not renew: test_read_path has that case).
        await any_redis.expire(key, 300)
    await redis_store.read_page(user, None, 5)
    assert await any_redis.ttl(home.marker) > 590 and await any_redis.ttl(home.ids) > 590


@pytest.mark.parametrize("kind", ["home", "celebrity list"])
async def test_only_the_rebuild_that_holds_a_list_lands_it(any_redis, kind: str) -> None:
    """Two processes: A begins and reads the source; a removal reaches the list; after
    waiting, B takes it over (erasing the mark the removal left) and reads after the
    removal. A, slow, not dead, must not land its read, before or after B lands."""
    a, b = (RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600) for _ in range(2))
    owner, run = uuid.uuid4(), _ids(20)
    deleted, fresh = run[0], run[1:]
    item = lambda ids: [TweetItem(t, owner, "o", "", "") for t in ids]  # noqa: E731

    if kind == "home":
        begin = lambda store: store.begin_rebuild(owner, [], take_over=store is b)  # noqa: E731
        land = lambda store, ids: store.finish_rebuild(owner, [], b"".join(t.bytes for t in ids))  # noqa: E731
        remove, held = a.unpush_from_homes([owner], [deleted]), lambda: a.home_ids(owner)
    else:
        begin = lambda store: store.begin_celebrity_list(owner, take_over=store is b)  # noqa: E731
        land = lambda store, ids: store.finish_celebrity_list(owner, item(ids))  # noqa: E731
        remove, held = a.unpush_from_celebrity(owner, [deleted]), lambda: a.celebrity_ids(owner)

    assert await begin(a)
    await remove  # "x": A's read is spoiled
    assert await begin(b)  # taken over: "r" and B's token
    assert not await land(a, run)  # A, before B lands: refused, B's list untouched
    assert await held() == []
    assert await land(b, fresh)
    assert not await land(a, run)  # A again, after: nothing to land (its token is spent)
    assert _u(await held()) == fresh
    if kind == "celebrity list":  # kept with no TTL, its marker too
        listing = keys.celebrity(owner)
        assert await any_redis.ttl(listing.marker) == -1 and await any_redis.ttl(listing.ids) == -1


async def test_a_late_landing_does_not_undo_a_removal_or_a_cut(any_redis) -> None:
    a, b = (RedisTimelineStore(any_redis, 5, ttl_seconds=600, item_ttl_seconds=600) for _ in range(2))
    owner, run = uuid.uuid4(), _ids(5)
    assert await a.begin_rebuild(owner, [])
    assert await b.begin_rebuild(owner, [], take_over=True)  # A was too slow
    assert await b.finish_rebuild(owner, [], b"".join(t.bytes for t in run))  # at its cap
    await b.unpush_from_homes([owner], [run[0]])  # a delete: the list is cut ("c")
    assert not await a.finish_rebuild(owner, [], b"".join(t.bytes for t in run))
    page = await b.read_page(owner, run[1], 5)
    # Still cut: the window ends at its last entry (read from the source from there).
    assert _u(page.ids) == run[2:4] and page.window_ended


async def test_a_take_over_joins_a_slow_rebuild_and_the_first_to_finish_lands(any_redis) -> None:
    # The reader that waited took over a rebuild that was slow, not dead: either may land
    # (the first to finish), and what fan-out pushed since the first began is kept.
    a, b = (RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600) for _ in range(2))
    owner, (late, *run) = uuid.uuid4(), _ids(6)
    assert await a.begin_rebuild(owner, [])
    await a.push_to_homes([owner], [late])  # fanned out after A read the source
    assert await b.begin_rebuild(owner, [], take_over=True)
    assert await a.finish_rebuild(owner, [], b"".join(t.bytes for t in run))
    assert not await b.finish_rebuild(owner, [], b"".join(t.bytes for t in [late, *run]))  # landed already
    assert _u(await a.home_ids(owner)) == [late, *run]


@pytest.mark.parametrize("late", ["before the other lands", "after"])
async def test_a_refused_landing_adds_none_of_the_celebrities_it_read(any_redis, late: str) -> None:
    # A read that the user follows a celebrity; they unfollowed it (the removal spoils
    # A's rebuild); B took over and read they do not. A lands late: refused, and the
    # celebrity is not merged into their pages.
    a, b = (RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600) for _ in range(2))
    owner, star, run = uuid.uuid4(), uuid.uuid4(), b"".join(t.bytes for t in _ids(3))
    assert await a.begin_rebuild(owner, [])
    await a.unpush_from_homes([owner], [])  # the unfollow's: none of the star's ids held yet
    assert await b.begin_rebuild(owner, [], take_over=True)  # afresh: A's token is void
    landings = [a.finish_rebuild(owner, [star], run), b.finish_rebuild(owner, [], run)]
    for landing in landings if late == "before the other lands" else landings[::-1]:
        await landing
    assert await b.followed_celebrities(owner) == []
    assert len(await b.home_ids(owner)) == 3


async def test_a_take_over_keeps_the_list_alive_as_long_as_the_mark(any_redis) -> None:
    # The list a take-over joins was made when fan-out first pushed into it, with the
    # first mark's expiry: the join restarts the window for both, or the list could lapse
    # under a live mark, and its ids with it.
    a, b = (RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600) for _ in range(2))
    owner, (late,) = uuid.uuid4(), _ids(1)
    assert await a.begin_rebuild(owner, [])
    await a.push_to_homes([owner], [late])
    await any_redis.pexpire(keys.home(owner).ids, 2000)  # as if most of the window had passed
    assert await b.begin_rebuild(owner, [], take_over=True)
    assert await any_redis.pttl(keys.home(owner).ids) > 30_000


async def test_a_merge_that_only_trims_a_list_keeps_its_expiry(any_redis) -> None:
    store = RedisTimelineStore(any_redis, 50, ttl_seconds=600, item_ttl_seconds=600)
    owner, run = uuid.uuid4(), _ids(52)
    assert await store.begin_rebuild(owner, [])
    assert await store.finish_rebuild(owner, [], b"".join(t.bytes for t in run[2:]))  # 50: at the cap
    for t in run[1::-1]:
        await store.push_to_homes([owner], [t])  # two on top: 52, in the slack
    assert await any_redis.llen(keys.home(owner).ids) == 52
    await store.push_to_homes([owner], run[:17])  # all there already: merged, trimmed to 50
    assert await any_redis.llen(keys.home(owner).ids) == 50
    assert await any_redis.ttl(keys.home(owner).ids) > 0
