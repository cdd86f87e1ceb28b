"""The whole read path on Redis Cluster: rebuild, celebrity merge, hydration, paging."""

from __future__ import annotations

import pytest

from tests.support import USERS_API, eventually, unique_name
from timeline.adapters.feed import Feed
from timeline.adapters.tweet_cache import TweetCache
from timeline.adapters.users_client import UsersClient
from timeline.services.fanout import Fanout
from timeline.services.reader import Reader
from users.services import accounts, follows, tweets as tweet_service


@pytest.fixture
async def reader(cluster_redis):
    users = UsersClient(USERS_API)
    feed, cache = Feed(cluster_redis, max_items=50, ttl_seconds=600), TweetCache(cluster_redis, 600)
    # Threshold 2: an author with two followers is a celebrity, merged at read time.
    fanout = Fanout(feed, cache, users, celebrity_threshold=2, backfill_items=50, batch=100)
    yield Reader(feed, cache, users, fanout)
    await users.close()


async def test_a_page_with_a_celebrity_merged_in_reads_the_same_on_a_cluster(db, reader: Reader, cluster_redis) -> None:
    me, star, friend, fan = [await accounts.create_user(db, unique_name()) for _ in range(4)]
    for follower, followee in ((me.user_id, star.user_id), (fan.user_id, star.user_id), (me.user_id, friend.user_id)):
        await follows.follow(db, follower, followee)
    await eventually(lambda: _followers(db, star.user_id, 2), what="the star's second follower")
    posted = []
    for i in range(3):
        for author in (star, friend, me):
            posted.append((await tweet_service.publish(db, author.user_id, f"{author.username} {i}", None))[0])
    await cluster_redis.delete("tw:" .encode() + posted[0].bytes)  # one cache miss, refilled from the source
    seen, cursor = [], None
    while True:
        items, cursor = await reader.page(me.user_id, cursor, 4)
        seen += [reader.cache.decode(raw).tweet_id for raw in items]
        if cursor is None:
            break
    assert seen == sorted(posted, reverse=True)
    celebrities = await cluster_redis.smembers("fc:{" + me.user_id.hex + "}")
    assert celebrities == {star.user_id.bytes}


async def _followers(db, user_id, count) -> bool:
    return (await accounts.get_user(db, user_id)).followers_count >= count
