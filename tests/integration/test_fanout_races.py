"""Events that race each other, on the fake store and on the Redis store (single and
cluster). A tweet whose event says its author is a celebrity, applied after the author
stopped being one, reaches the followers: the demotion closes the author's list as it
reads it, and a push that finds it closed (or finds no list of an author never made one
here) goes to the homes. A follow while the follower's home is rebuilt leaves no home
that lacks the followee. A tweet's fan-out that comes after its delete delivers
nothing."""

from __future__ import annotations

import uuid

import pytest

from shared_schemas.events import FollowCreated, FollowRemoved, TweetCreated
from shared_schemas.ids import iso_ms, new_id, utcnow
from shared_schemas.internal_api import TweetItem
from tests.fakes import FakeTimelineStore
from tests.unit.services import World, world
from timeline.adapters.store.redis_store import RedisTimelineStore
from timeline.services.ports import ListPush

THRESHOLD = 3


@pytest.fixture(params=["fake", "scratch_redis", "cluster_redis"])
def store_kind(request) -> str:
    return request.param


@pytest.fixture
def w(store_kind: str, request) -> World:
    if store_kind == "fake":
        return world(THRESHOLD, store=FakeTimelineStore(800))
    redis = request.getfixturevalue(store_kind)
    return world(THRESHOLD, store=RedisTimelineStore(redis, 800, ttl_seconds=600, item_ttl_seconds=600))


async def test_a_celebritys_tweet_still_on_its_way_when_the_author_is_demoted_reaches_the_followers(w: World) -> None:
    star, plain = w.users.add_user("star"), w.users.add_user("plain")
    fans = [w.users.add_user(f"fan{i}") for i in range(THRESHOLD)]
    for fan in fans:
        await w.timeline(fan)  # read once: materialized
        await w.follow(fan, star)  # the last makes the star a celebrity
    for fan in fans[:-1]:
        await w.follow(fan, plain)
    before = await w.tweet(star)  # into the star's list, merged on read
    plains = [await w.tweet(plain) for _ in range(4)]  # fanned out: the pages come from the homes
    on_its_way = w.tweet_event(star)  # committed as a celebrity's, its event not applied yet
    await w.unfollow(fans[-1], star)  # below the threshold: demoted, the list read into the homes
    await w.fanout.handle(on_its_way)
    after = await w.tweet(star)  # fanned out as anyone's
    for fan in fans[:-1]:
        assert await w.timeline(fan) == [after, on_its_way.tweet_id, *plains[::-1], before], fan


async def test_a_crossing_and_its_way_back_before_the_worker_looked_loses_no_tweet(w: World) -> None:
    author = w.users.add_user("author")
    fans = [w.users.add_user(f"fan{i}") for i in range(THRESHOLD)]
    for fan in fans[:-1]:
        await w.timeline(fan)
        await w.follow(fan, author)  # below the threshold: fanned out
    w.users.follow(fans[-1], author)  # at the threshold for a moment...
    tweet = w.tweet_event(author)  # ...while the author posts: the event says "celebrity"
    w.users.unfollow(fans[-1], author)  # and below it again, before the worker sees either
    now = utcnow()
    await w.fanout.handle(FollowCreated(event_id=new_id(), occurred_at=now, follower_id=fans[-1], followee_id=author))
    await w.fanout.handle(FollowRemoved(event_id=new_id(), occurred_at=now, follower_id=fans[-1], followee_id=author))
    await w.fanout.handle(tweet)
    for fan in fans[:-1]:
        assert await w.timeline(fan) == [tweet.tweet_id], fan


async def test_a_closed_list_takes_no_push_reads_as_it_was_and_opens_again_when_forgotten(w: World) -> None:
    star, fan = w.users.add_user("star"), w.users.add_user("fan")
    for i in range(THRESHOLD):
        await w.follow(w.users.add_user(f"f{i}") if i else fan, star)
    kept = await w.tweet(star)
    assert await w.store.is_celebrity_list_filled(star)
    assert [uuid.UUID(bytes=i) for i in await w.store.close_celebrity_list(star) or []] == [kept]
    assert await w.store.push_to_celebrity(star, [new_id()]) is ListPush.CLOSED
    again = await w.store.close_celebrity_list(star)  # a demotion tried again reads the same
    assert again is not None and [uuid.UUID(bytes=i) for i in again] == [kept]
    assert await w.store.is_celebrity_list_filled(star)  # readers do not fill it anew
    await w.store.drop_closed_celebrity_list(star)
    assert await w.store.push_to_celebrity(star, [new_id()]) is ListPush.CLOSED
    await w.store.forget_celebrity_list(star)  # a celebrity again: filled from the source
    assert await w.store.push_to_celebrity(star, [new_id()]) is ListPush.ABSENT


async def test_a_follow_while_the_followers_home_is_rebuilt_leaves_no_home_that_lacks_the_followee(
    store_kind: str, request
) -> None:
    """Not a crossing, but the same kind of race (0023): the rebuild read the graph before
    the follow; the follow's backfill (a part of the followee's tweets) came meanwhile."""
    backfill = 5
    if store_kind == "fake":
        w = world(THRESHOLD, store=FakeTimelineStore(800), backfill_items=backfill)
    else:
        redis = request.getfixturevalue(store_kind)
        store = RedisTimelineStore(redis, 800, ttl_seconds=600, item_ttl_seconds=600)
        w = world(THRESHOLD, store=store, backfill_items=backfill)
    author, reader = w.users.add_user("author"), w.users.add_user("reader")
    theirs = [w.tweet_event(author).tweet_id for _ in range(backfill + 3)]  # more than a backfill
    own = [w.tweet_event(reader).tweet_id for _ in range(2)]
    assert await w.store.begin_rebuild(reader, take_over=False)  # a read's rebuild, step one
    source = await w.users.home_source(reader, THRESHOLD, 800, 800)  # the graph before the follow
    await w.follow(reader, author)  # and its backfill, while the rebuild is on its way
    await w.store.finish_rebuild(reader, source.celebrities, source.tweet_ids, source.tweets)
    assert set(await w.timeline(reader)) == {*theirs, *own}


async def test_a_tweet_deleted_before_its_fan_out_came_stays_gone(w: World) -> None:
    """A worker behind (or one that lost the partition and finished its run late) comes
    to a tweet after its author deleted it: it was back in the author's home and every
    follower's until the delete's own event came."""
    author, fan = w.users.add_user("author"), w.users.add_user("fan")
    await w.timeline(author)
    await w.timeline(fan)
    await w.follow(fan, author)
    kept, doomed = w.tweet_event(author), w.tweet_event(author)
    await w.fanout.own_tweets([_item(kept), _item(doomed)])  # the POSTs' read-your-writes
    del w.users.tweets[doomed.tweet_id]
    await w.fanout.own_delete(author, doomed.tweet_id)  # the DELETE, as it is answered
    await w.fanout.tweets_created([kept, doomed])  # the fan-out, behind
    assert await w.timeline(author) == [kept.tweet_id]
    assert await w.timeline(fan) == [kept.tweet_id]


def _item(event: TweetCreated) -> TweetItem:
    created = iso_ms(event.created_at)
    return TweetItem(event.tweet_id, event.author_id, event.username, event.text, created)
