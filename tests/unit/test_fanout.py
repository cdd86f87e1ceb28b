"""Fan-out, celebrities and their crossings, against in-memory fakes of the store and
the source of truth: what each event leaves in the read model."""

from __future__ import annotations

import uuid

import pytest

from shared_schemas.events import FollowRemoved
from shared_schemas.ids import new_id, utcnow
from tests.fakes import Unreachable
from tests.unit.services import world


def _ids(raw: list[bytes]) -> list[uuid.UUID]:
    return [uuid.UUID(bytes=b) for b in raw]


async def test_a_tweet_reaches_every_reading_follower_and_its_author_and_nobody_else() -> None:
    w = world()
    author, reader, idle, stranger = (w.users.add_user(n) for n in ("a", "r", "i", "s"))
    for follower in (reader, idle):
        w.users.follow(follower, author)
    for user in (author, reader, stranger):
        await w.timeline(user)  # read once: materialized
    tweet = await w.tweet(author)
    assert _ids(await w.store.home_ids(reader)) == [tweet] == _ids(await w.store.home_ids(author))
    assert await w.store.home_ids(idle) == []  # nobody reads it: rebuilt when someone does
    assert await w.store.home_ids(stranger) == []
    assert await w.timeline(idle) == [tweet]


async def test_tweets_fanned_out_together_deliver_what_they_can_when_one_fails() -> None:
    w = world()
    first, second = w.users.add_user("a"), w.users.add_user("b")
    fans = {first: w.users.add_user("fa"), second: w.users.add_user("fb")}
    for author, fan in fans.items():
        w.users.follow(fan, author)
        await w.store.begin_rebuild(fan, [])
        await w.store.finish_rebuild(fan)  # a reader's home, materialized
    events = [w.tweet_event(first), w.tweet_event(second)]
    w.users.down = 1  # the first author's followers cannot be read, this once
    with pytest.raises(Unreachable):
        await w.fanout.tweets_created(events)
    # The second tweet went out all the same; the run is tried again for the first.
    assert _ids(await w.store.home_ids(fans[second])) == [events[1].tweet_id]
    assert await w.store.home_ids(fans[first]) == []
    await w.fanout.tweets_created(events)
    assert _ids(await w.store.home_ids(fans[first])) == [events[0].tweet_id]
    assert _ids(await w.store.home_ids(fans[second])) == [events[1].tweet_id]


async def test_a_celebritys_tweet_is_kept_once_and_merged_into_each_followers_page() -> None:
    w = world(threshold=2)
    star, fan, other, plain = (w.users.add_user(n) for n in ("s", "f", "o", "p"))
    await w.timeline(fan)
    await w.follow(fan, plain)
    await w.follow(fan, star)
    await w.follow(other, star)  # the second follower: a celebrity now
    older = await w.tweet(plain)
    tweet = await w.tweet(star)
    assert tweet.bytes not in await w.store.home_ids(fan)  # not fanned out
    assert _ids(await w.store.celebrity_ids(star)) == [tweet]
    assert await w.timeline(fan) == [tweet, older] and await w.timeline(other) == [tweet]


async def test_crossing_the_threshold_either_way_rewires_the_homes() -> None:
    w = world(threshold=3)
    author, first, second, third = (w.users.add_user(n) for n in ("a", "1", "2", "3"))
    for fan in (first, second):
        await w.timeline(fan)
        await w.follow(fan, author)
    before = await w.tweet(author)  # fanned out
    await w.follow(third, author)  # crosses up: merged at read time from now on
    assert author in w.store.celebs and author in w.store.followed[first]
    during = await w.tweet(author)
    assert during.bytes not in await w.store.home_ids(first)
    for fan in (first, second, third):
        assert await w.timeline(fan) == [during, before]  # once each, in order
    await w.unfollow(third, author)  # crosses down: the list's tweets go into the homes
    assert author not in w.store.celebs and author not in w.store.followed[first]
    after = await w.tweet(author)
    for fan in (first, second):
        assert _ids(await w.store.home_ids(fan)) == [after, during, before]
        assert await w.timeline(fan) == [after, during, before]
    assert await w.timeline(third) == []


async def test_a_follow_backfills_and_an_unfollow_takes_the_authors_tweets_away() -> None:
    w = world()
    author, other, reader = (w.users.add_user(n) for n in ("a", "o", "r"))
    await w.timeline(reader)
    early = [await w.tweet(author, f"early {i}") for i in range(3)]
    await w.follow(reader, other)
    theirs = await w.tweet(other)
    await w.follow(reader, author)
    assert await w.timeline(reader) == [theirs, *early[::-1]]
    await w.unfollow(reader, author)
    assert await w.timeline(reader) == [theirs]


async def test_a_follow_of_an_author_with_more_tweets_than_the_backfill_misses_none() -> None:
    # The backfill brings the followee's newest 50: the home must not pass for the whole
    # story below them, where the followee's older tweets come from the source.
    w = world()  # backfill_items=50
    author, other, reader = (w.users.add_user(n) for n in ("a", "o", "r"))
    await w.timeline(reader)
    await w.follow(reader, other)
    posted = []
    for i in range(60):
        if i % 20 == 0:
            posted.append(await w.tweet(other, f"other {i}"))
        posted.append(await w.tweet(author, f"author {i}"))
    await w.follow(reader, author)
    assert await w.timeline(reader, page=20) == posted[::-1]


async def test_a_deleted_tweet_leaves_homes_lists_and_the_cache() -> None:
    w = world(threshold=2)
    author, star, fan, other = (w.users.add_user(n) for n in ("a", "s", "f", "o"))
    await w.timeline(fan)
    for followee in (author, star):
        await w.follow(fan, followee)
    await w.follow(other, star)
    plain, starred = await w.tweet(author), await w.tweet(star)
    await w.delete(author, plain)
    await w.delete(star, starred)
    assert await w.timeline(fan) == []
    assert await w.store.get_items([plain.bytes, starred.bytes]) == [None, None]
    assert await w.store.celebrity_ids(star) == []


async def test_the_same_event_twice_changes_nothing_more() -> None:
    w = world()
    author, reader = w.users.add_user("a"), w.users.add_user("r")
    w.users.follow(reader, author)
    await w.timeline(reader)
    event = w.tweet_event(author)
    for _ in range(3):
        await w.fanout.handle(event)
    assert _ids(await w.store.home_ids(reader)) == [event.tweet_id]


async def test_a_threshold_crossing_that_fails_half_way_is_done_whole_when_the_event_is_retried() -> None:
    w = world(threshold=3)
    author, first, second, third = (w.users.add_user(n) for n in ("a", "1", "2", "3"))
    for fan in (first, second, third):
        await w.timeline(fan)
        await w.follow(fan, author)
    during = await w.tweet(author)  # a celebrity's: in its list only
    real_pages = w.users.follower_pages

    async def failing_after_one(user_id, page_size):
        async for page in real_pages(user_id, 1):
            yield page
            raise Unreachable("the Users Service went away mid-walk")

    w.users.unfollow(third, author)  # what the Users Service did; its event, below
    event = FollowRemoved(event_id=new_id(), occurred_at=utcnow(), follower_id=third, followee_id=author)
    w.users.follower_pages = failing_after_one  # type: ignore[method-assign]
    with pytest.raises(Unreachable):
        await w.fanout.handle(event)
    w.users.follower_pages = real_pages  # type: ignore[method-assign]
    await w.fanout.handle(event)  # the worker's retry: the crossing is seen again
    assert author not in w.store.celebs
    for fan in (first, second):
        assert author not in w.store.followed[fan]
        assert await w.timeline(fan) == [during]
