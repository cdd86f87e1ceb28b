"""The whole read path, on a single Redis and on Redis Cluster: rebuild, celebrity
merge, hydration (with the page script's items or on its own), paging."""

from __future__ import annotations

import uuid

import pytest

from shared_schemas.ids import new_id
from shared_schemas.internal_api import TweetItem
from tests.integration.conftest import MAX_FOLLOWING
from tests.support import USERS_API, eventually, unique_name
from timeline.adapters.store import keys
from timeline.adapters.store.redis_store import RedisTimelineStore
from timeline.adapters.users_client import UsersClient
from timeline.domain import items as item_codec
from timeline.services.celebrities import Celebrities
from timeline.services.reader import Reader
from users.services import accounts, follows
from users.services import tweets as tweet_service


@pytest.fixture
async def reader(any_redis):
    users = UsersClient(USERS_API)
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
    # Threshold 2: an author with two followers is a celebrity, merged at read time.
    yield Reader(store, users, Celebrities(store, users, threshold=2, batch=100))
    await users.close()


async def test_a_page_with_a_celebrity_merged_in_reads_whole_and_in_order(db, reader: Reader, any_redis) -> None:
    me, star, friend, fan = [await accounts.create_user(db, unique_name()) for _ in range(4)]
    for follower, followee in ((me.user_id, star.user_id), (fan.user_id, star.user_id), (me.user_id, friend.user_id)):
        await follows.follow(db, follower, followee, MAX_FOLLOWING)
    await eventually(lambda: _followers(db, star.user_id, 2), what="the star's second follower")
    posted = []
    for i in range(3):
        for author in (star, friend, me):
            posted.append((await tweet_service.publish(db, author.user_id, f"{author.username} {i}", None)).tweet_id)
    await any_redis.delete(keys.item(posted[0]))  # one cache miss, refilled from the source
    seen, cursor = [], None
    while True:
        items, cursor, *_ = await reader.page(me.user_id, cursor, 4)
        seen += [item_codec.decode(raw).tweet_id for raw in items]
        if cursor is None:
            break
    assert seen == sorted(posted, reverse=True)
    celebrities = await any_redis.smembers(keys.home(me.user_id).celebrities)
    assert celebrities == {keys.followed(star.user_id)}


async def test_a_page_without_celebrities_fills_what_the_cache_lacks(db, reader: Reader, any_redis) -> None:
    # On a single Redis the page script brings the cached items with the ids; the
    # ones it lacks still come from the Users Service, in place, and are cached again.
    me, friend = [await accounts.create_user(db, unique_name()) for _ in range(2)]
    await follows.follow(db, me.user_id, friend.user_id, MAX_FOLLOWING)
    posted = [(await tweet_service.publish(db, friend.user_id, f"plain {i}", None)).tweet_id for i in range(5)]
    first, *_ = await reader.page(me.user_id, None, 5)  # builds the home, caches the items
    missing = [keys.item(posted[i]) for i in (1, 3)]
    for key in missing:  # one by one: on a cluster they are on different nodes
        await any_redis.delete(key)
    again, cursor, *_ = await reader.page(me.user_id, None, 5)
    assert again == first and [item_codec.decode(raw).tweet_id for raw in again] == posted[::-1]
    assert cursor is None
    assert all([await any_redis.exists(key) for key in missing])


async def _followers(db, user_id, count) -> bool:
    return (await accounts.get_user(db, user_id)).followers_count >= count


async def test_items_cached_together_are_each_cached_with_the_expiry(any_redis) -> None:
    # Many at once (a rebuild caches up to 800) go in one script call on a single Redis,
    # as a pipeline on a cluster: either way, each item under its key, expiring.
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
    items = [
        TweetItem(
            tweet_id=new_id(),
            user_id=uuid.uuid4(),
            username="someone",
            text=f"text {i}",
            created_at="2026-11-25T10:00:00.000Z",
        )
        for i in range(30)
    ]
    await store.put_items(items)
    found = await store.get_items([item.tweet_id.bytes for item in items])
    assert [item_codec.decode(raw) for raw in found if raw] == items
    for item in items[:3]:
        assert 0 < await any_redis.ttl(keys.item(item.tweet_id)) <= 600


async def _walk_up(reader: Reader, user: uuid.UUID, start: uuid.UUID, limit: int) -> tuple[list[uuid.UUID], uuid.UUID]:
    """Refresh after refresh from `start` until nothing is newer: every id seen, oldest
    first, and the position at the head."""
    seen, position = [], start
    while True:
        items, older, newest, _ = await reader.newer(user, position, limit)
        assert older is None  # a refresh never offers a page further down
        ids = [item_codec.decode(raw).tweet_id for raw in items]
        assert ids == sorted(ids, reverse=True)  # newest first within the page
        assert newest == (ids[0] if ids else position)
        if not ids:
            return seen, position
        seen += ids[::-1]
        position = newest


async def test_a_refresh_walks_up_to_the_head_without_gap_or_repeat_celebrities_included(
    db, reader: Reader, any_redis
) -> None:
    me, star, friend, fan = [await accounts.create_user(db, unique_name()) for _ in range(4)]
    for follower, followee in ((me.user_id, star.user_id), (fan.user_id, star.user_id), (me.user_id, friend.user_id)):
        await follows.follow(db, follower, followee, MAX_FOLLOWING)
    await eventually(lambda: _followers(db, star.user_id, 2), what="the star's second follower")
    posted = []
    for i in range(4):
        for author in (star, friend, me):
            posted.append((await tweet_service.publish(db, author.user_id, f"{author.username} {i}", None)).tweet_id)
    await reader.page(me.user_id, None, 1)  # materialize the home
    # Id order is time order to the millisecond; within one, tweets of authors on other
    # shards order by the shard bits their ids carry (docs/decisions/0002): the order
    # every page promises is the ids'.
    posted.sort()
    seen, head = await _walk_up(reader, me.user_id, posted[0], 3)
    assert seen == posted[1:]  # the items immediately newer, each once, in order
    assert head == posted[-1]
    # At the head: an empty page and the same position back, so a client can poll with it.
    again = await reader.newer(me.user_id, head, 3)
    assert again.items == [] and again.newest == head


async def test_a_refresh_from_below_the_cached_window_comes_from_the_source(db, any_redis) -> None:
    users = UsersClient(USERS_API)
    store = RedisTimelineStore(any_redis, max_items=5, ttl_seconds=600, item_ttl_seconds=600)
    small = Reader(store, users, Celebrities(store, users, threshold=1000, batch=100))
    try:
        me, friend = [await accounts.create_user(db, unique_name()) for _ in range(2)]
        await follows.follow(db, me.user_id, friend.user_id, MAX_FOLLOWING)
        posted = [(await tweet_service.publish(db, friend.user_id, f"many {i}", None)).tweet_id for i in range(12)]
        await small.page(me.user_id, None, 1)  # the home holds the newest five only
        assert len(await store.home_ids(me.user_id)) == 5
        seen, head = await _walk_up(small, me.user_id, posted[0], 4)
        assert seen == posted[1:] and head == posted[-1]
    finally:
        await users.close()


async def test_a_rebuild_that_died_midway_is_never_served_half_built_and_is_done_again(db, any_redis) -> None:
    users = UsersClient(USERS_API)
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600, rebuild_seconds=1)
    celebrities = Celebrities(store, users, threshold=1000, batch=100)
    try:
        me, friend = [await accounts.create_user(db, unique_name()) for _ in range(2)]
        await follows.follow(db, me.user_id, friend.user_id, MAX_FOLLOWING)
        posted = [(await tweet_service.publish(db, friend.user_id, f"old {i}", None)).tweet_id for i in range(3)]
        # A process marks the home and dies before it fills it. A patient reader waits
        # (it serves no empty page) until the mark lapses, then builds the home itself.
        assert await store.begin_rebuild(me.user_id, take_over=False)
        patient = Reader(store, users, celebrities, rebuild_wait=30)
        items, *_ = await patient.page(me.user_id, None, 10)
        assert [item_codec.decode(raw).tweet_id for raw in items] == posted[::-1]
        assert await any_redis.ttl(keys.home(me.user_id).marker) > 500, "whole: the full TTL"

        # A mark that outlasts a reader's wait: the reader takes the home over.
        await any_redis.delete(keys.home(me.user_id).marker)
        lasting = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
        assert await lasting.begin_rebuild(me.user_id, take_over=False)
        impatient = Reader(lasting, users, celebrities, rebuild_wait=0.2)
        items, *_ = await impatient.page(me.user_id, None, 10)
        assert [item_codec.decode(raw).tweet_id for raw in items] == posted[::-1]
    finally:
        await users.close()
