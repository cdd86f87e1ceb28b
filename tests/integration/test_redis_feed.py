"""The feed's Redis scripts on a real Redis and a real Redis Cluster: idempotent,
ordered, capped, expiring."""

from __future__ import annotations

import random
import uuid

import pytest
from redis.asyncio import RedisCluster

from shared_schemas.ids import new_id
from timeline.adapters import tweet_cache
from timeline.adapters.feed import Feed


@pytest.fixture
def feed(any_redis) -> Feed:
    return Feed(any_redis, max_items=5, ttl_seconds=600)


def _ids(n: int) -> list[uuid.UUID]:
    return sorted((new_id() for _ in range(n)), reverse=True)  # newest first


async def _home(feed: Feed, user: uuid.UUID) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=b) for b in await feed.home_ids(user)]


async def test_a_home_that_nobody_reads_is_not_written(feed: Feed) -> None:
    user = uuid.uuid4()
    await feed.push_to_homes([user], _ids(1))
    assert await _home(feed, user) == []


async def test_one_fan_out_reaches_every_reading_home_among_hundreds_and_no_other(feed: Feed) -> None:
    # More homes than one script call takes (PUSH_HOMES), read and unread interleaved:
    # each reading home gets the tweet once, in order; an unread one gets nothing.
    users = [uuid.uuid4() for _ in range(250)]
    readers = users[::3]
    older, newer = _ids(2)[::-1]
    for user in readers:
        await feed.begin_rebuild(user, [])
    await feed.push_to_homes(users, [older])
    await feed.push_to_homes(users, [newer, older])  # a redelivery with a newer one
    for user in users:
        assert await _home(feed, user) == ([newer, older] if user in readers else [])


async def test_duplicates_and_late_arrivals_land_once_in_order(feed: Feed) -> None:
    user = uuid.uuid4()
    newest, middle, oldest = _ids(3)
    await feed.begin_rebuild(user, [])
    for tweet_id in (middle, middle, newest, oldest, newest, middle):
        await feed.push_to_homes([user], [tweet_id])
    assert await _home(feed, user) == [newest, middle, oldest]


async def test_the_home_keeps_only_the_newest_max_items(feed: Feed) -> None:
    user = uuid.uuid4()
    ids = _ids(8)
    await feed.begin_rebuild(user, [])
    await feed.merge_into_home(user, ids[::-1])  # oldest first, the worst order
    assert await _home(feed, user) == ids[:5]
    await feed.push_to_homes([user], [ids[7]])  # older than everything kept: skipped
    assert await _home(feed, user) == ids[:5]


async def test_many_ids_at_once_merge_in_one_pass_with_what_the_home_holds(any_redis) -> None:
    """A rebuild or a backfill (more than 16 ids, in any order) goes through the
    script's one-pass merge: the same result as placing them one by one."""
    feed = Feed(any_redis, max_items=30, ttl_seconds=600)
    user = uuid.uuid4()
    ids = _ids(45)
    await feed.begin_rebuild(user, [])
    for tweet_id in (ids[3], ids[20], ids[44]):  # fanned out while the rebuild ran
        await feed.push_to_homes([user], [tweet_id])
    given = ids[:40]
    random.shuffle(given)
    await feed.merge_into_home(user, given + given[:5])  # repeats too
    assert await _home(feed, user) == ids[:30]  # the newest 30 of everything, once each
    assert 0 < await any_redis.ttl("tl:{" + user.hex + "}") <= 600  # written anew, still expiring
    await feed.merge_into_home(user, ids[:20])  # nothing new: nothing rewritten
    assert await _home(feed, user) == ids[:30]


async def test_pages_start_strictly_after_the_cursor(feed: Feed) -> None:
    user = uuid.uuid4()
    ids = _ids(5)
    await feed.begin_rebuild(user, [])
    await feed.merge_into_home(user, ids)
    first = await feed.page_home(user, None, 2)
    assert first.materialized and not first.truncated
    assert [uuid.UUID(bytes=b) for b in first.ids] == ids[:2]
    second = await feed.page_home(user, uuid.UUID(bytes=first.ids[-1]), 2)
    assert [uuid.UUID(bytes=b) for b in second.ids] == ids[2:4]
    # A cursor that is not in the list (its tweet was deleted) still pages correctly.
    await feed.unpush_from_homes([user], [ids[2]])
    again = await feed.page_home(user, ids[2], 2)
    assert [uuid.UUID(bytes=b) for b in again.ids] == ids[3:5]


async def test_a_home_read_brings_the_rest_of_its_page_on_a_single_redis(any_redis) -> None:
    """One round trip a page where it can be: on a single Redis the page script also
    reads the lists of the celebrities a home merges in, merges them, and reads the
    cached items of the page (saying which ones the cache lacks). Not on a cluster,
    where those keys live on other nodes."""
    feed = Feed(any_redis, max_items=5, ttl_seconds=600, items_prefix=tweet_cache.KEY_PREFIX)
    plain, fan, star, quiet = uuid.uuid4(), uuid.uuid4(), uuid.uuid4(), uuid.uuid4()
    ids = _ids(6)
    home, theirs = ids[1::2], ids[0::2]
    for tweet_id in ids:
        if tweet_id != home[1]:  # not cached (evicted, say)
            await any_redis.set(tweet_cache.KEY_PREFIX + tweet_id.bytes, b"%d" % ids.index(tweet_id))
    # ids[0] was fanned out to the homes before `star` became a celebrity: in both lists.
    await feed.push_to_celebrity(star, theirs, fill=True)  # `quiet`'s list is not filled
    await feed.begin_rebuild(plain, [])
    await feed.begin_rebuild(fan, [star, quiet])
    for user in (plain, fan):
        await feed.merge_into_home(user, [ids[0], *home])
    page = await feed.page_home(plain, None, 4)
    merged = await feed.page_home(fan, None, 4)
    assert [uuid.UUID(bytes=b) for b in page.ids] == [ids[0], *home] == [uuid.UUID(bytes=b) for b in merged.ids]
    assert set(merged.celebrities) == {star, quiet}
    if isinstance(any_redis, RedisCluster):
        assert page.prefetched is None and merged.prefetched is None and merged.celebrity_slices is None
        return
    assert page.prefetched == (page.ids, [b"0", b"1", None, b"5"])
    lists = dict(zip(merged.celebrities, merged.celebrity_slices))
    assert [uuid.UUID(bytes=b) for b in lists[star].ids] == theirs and lists[star].materialized
    assert not lists[quiet].materialized and lists[quiet].ids == []
    newest, items = merged.prefetched
    assert [uuid.UUID(bytes=b) for b in newest] == ids[:4] and items == [b"0", b"1", b"2", None]
    after = await feed.page_home(fan, ids[1], 4)  # the cursor applies to every list
    assert [uuid.UUID(bytes=b) for b in after.prefetched[0]] == ids[2:]
    empty = await feed.page_home(plain, ids[-1], 4)  # past the end: nothing to read
    assert empty.ids == [] and empty.prefetched == ([], [])


async def test_a_short_slice_says_whether_the_list_ran_out_at_its_cap(feed: Feed) -> None:
    """`truncated`: older tweets exist that the capped list no longer holds, so the
    reader must go on from the source of truth; a list below its cap is the whole story."""
    full, short = uuid.uuid4(), uuid.uuid4()
    ids = _ids(5)
    for user, held in ((full, ids), (short, ids[:3])):
        await feed.begin_rebuild(user, [])
        await feed.merge_into_home(user, held)
    whole = await feed.page_home(full, None, 5)  # a complete slice: nothing to say
    assert len(whole.ids) == 5 and not whole.truncated
    end = await feed.page_home(full, ids[2], 5)  # past the cursor, two left of five
    assert [uuid.UUID(bytes=b) for b in end.ids] == ids[3:] and end.truncated
    below = await feed.page_home(short, None, 5)
    assert len(below.ids) == 3 and not below.truncated
    unread = await feed.page_home(uuid.uuid4(), None, 5)
    assert not unread.materialized and unread.ids == []


async def test_a_home_list_expires_with_its_marker_and_a_rebuild_starts_clean(feed: Feed, any_redis) -> None:
    user = uuid.uuid4()
    stale, fresh = _ids(2)
    await feed.begin_rebuild(user, [])
    await feed.push_to_homes([user], [stale])
    marker_ttl = await any_redis.ttl("tlm:{" + user.hex + "}")
    list_ttl = await any_redis.ttl("tl:{" + user.hex + "}")
    assert 0 < list_ttl <= marker_ttl <= 600
    await feed.begin_rebuild(user, [])
    await feed.merge_into_home(user, [fresh])
    assert await _home(feed, user) == [fresh]


async def test_entries_are_compact(feed: Feed, scratch_redis) -> None:
    """About 20 bytes per entry is the aim; the benchmark measures it at scale."""
    user = uuid.uuid4()
    big = Feed(scratch_redis, max_items=800, ttl_seconds=600)
    await big.begin_rebuild(user, [])
    await big.merge_into_home(user, _ids(800))
    used = await scratch_redis.memory_usage("tl:{" + user.hex + "}")
    assert used / 800 < 24, used / 800


async def test_the_scripts_come_back_after_the_server_forgets_them(feed: Feed, any_redis) -> None:
    user = uuid.uuid4()
    ids = _ids(2)
    await feed.begin_rebuild(user, [])
    await any_redis.script_flush()  # as after a Redis restart or a failover
    await feed.push_to_homes([user], [ids[1]])
    await any_redis.script_flush()
    await feed.merge_into_home(user, [ids[0]])
    assert await _home(feed, user) == ids
    await any_redis.script_flush()
    page = await feed.page_home(user, None, 5)  # the read path loads its script itself
    assert page.materialized and [uuid.UUID(bytes=b) for b in page.ids] == ids


async def test_a_read_renews_an_expiry_that_has_run_down(feed: Feed, any_redis) -> None:
    user = uuid.uuid4()
    await feed.begin_rebuild(user, [])
    await feed.merge_into_home(user, _ids(1))
    marker, home = "tlm:{" + user.hex + "}", "tl:{" + user.hex + "}"
    for key in (marker, home):
        await any_redis.expire(key, 60)  # as if the reader had been away for days
    await feed.page_home(user, None, 5)
    assert await any_redis.ttl(marker) > 590 and await any_redis.ttl(home) > 590
