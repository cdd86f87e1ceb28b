"""The live streams' plumbing on a single Redis and on Redis Cluster: the scripts that
change a list publish on its channel (sharded pub/sub, in the list's slot), one
ChangeFeed hears them for every stream of a process, and a LiveTimeline turns them into
the home's new items, each once and in order, celebrity lists included."""

from __future__ import annotations

import asyncio
import uuid

import pytest

from shared_schemas.ids import new_id
from tests.integration.conftest import MAX_FOLLOWING
from tests.support import USERS_API, eventually, unique_name
from timeline.adapters.store import keys
from timeline.adapters.store.changes import ChangeFeed
from timeline.adapters.store.redis_store import RedisTimelineStore
from timeline.adapters.users_client import UsersClient
from timeline.domain import items as item_codec
from timeline.services.celebrities import Celebrities
from timeline.services.fanout import Fanout
from timeline.services.live import LiveTimeline
from timeline.services.reader import Reader
from users.services import accounts, follows
from users.services import tweets as tweet_service


@pytest.fixture
async def feed(any_redis):
    changes = ChangeFeed(any_redis)
    yield changes
    await changes.close()


async def test_adding_and_removing_ids_is_heard_on_the_lists_channels(any_redis, feed: ChangeFeed) -> None:
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
    user, star = uuid.uuid4(), uuid.uuid4()
    await store.begin_rebuild(user, [star])
    await store.finish_rebuild(user)  # whole: readers read it
    await store.begin_celebrity_list(star)
    await store.finish_celebrity_list(star, [])  # filled (empty)
    heard: asyncio.Queue[bytes] = asyncio.Queue()
    await feed.listen(feed.channels(user, [star]), heard)
    mine, theirs = new_id(), new_id()
    await store.push_to_homes([user], [mine])
    assert await asyncio.wait_for(heard.get(), 5) == b"+"
    await store.push_to_homes([user], [mine])  # already there: nothing changed, nothing said
    await store.push_to_celebrity(star, [theirs])
    assert await asyncio.wait_for(heard.get(), 5) == b"+"
    await store.unpush_from_homes([user], [mine])
    assert await asyncio.wait_for(heard.get(), 5) == b"-" + mine.bytes
    await store.unpush_from_celebrity(star, [theirs])
    assert await asyncio.wait_for(heard.get(), 5) == b"-" + theirs.bytes
    assert heard.empty()
    await feed.forget(feed.channels(user, [star]), heard)
    await store.push_to_homes([user], [new_id()])
    await asyncio.sleep(0.3)  # nothing may arrive once forgotten; a short wait shows it
    assert heard.empty()


async def test_a_stream_sends_the_homes_new_items_in_order_celebrities_included(db, any_redis, feed) -> None:
    users = UsersClient(USERS_API)
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
    celebrities = Celebrities(store, users, threshold=2, batch=100)
    reader = Reader(store, users, celebrities)
    fanout = Fanout(store, users, celebrities, backfill_items=20, batch=100)
    live = LiveTimeline(reader, store, feed, keepalive=1.0, per_caller=4, per_process=10)
    try:
        me, star, friend, fan = [await accounts.create_user(db, unique_name()) for _ in range(4)]
        for follower, followee in ((me, star), (fan, star), (me, friend)):
            await follows.follow(db, follower.user_id, followee.user_id, MAX_FOLLOWING)
        await eventually(lambda: _followers(db, star.user_id, 2), what="the star's second follower")
        events = await live.start(me.user_id, None)
        seen: list[uuid.UUID] = []
        task = asyncio.create_task(_collect(events, seen))
        await asyncio.sleep(0.2)
        posted = []
        for i in range(3):
            for author in (star, friend):
                tweet = await tweet_service.publish(db, author.user_id, f"{author.username} {i}", None)
                posted.append(tweet.tweet_id)
                # What the worker does with the event (the stack's worker writes another Redis).
                await fanout.own_tweets([_item(tweet)])
                if author is star:
                    await celebrities.ensure_list(star.user_id)
                    await store.push_to_celebrity(star.user_id, [tweet.tweet_id])
                else:
                    await store.push_to_homes([me.user_id], [tweet.tweet_id])
        await eventually(lambda: _at_least(seen, len(posted)), timeout=10, what="every tweet streamed")
        assert seen == sorted(posted)  # id order: time order to the millisecond (test_read_path.py)
        live.end_all()
        await asyncio.wait_for(task, 5)  # a stopping process ends the stream
    finally:
        await users.close()


def _item(tweet):
    from users.api.schemas import tweet_item

    return tweet_item(tweet)


async def _collect(events, seen: list[uuid.UUID]) -> None:
    """The ids of a stream's tweet events, as they come."""
    async for event in events:
        if event.kind == "tweet":
            seen.append(item_codec.decode(event.item).tweet_id)


async def _at_least(seen: list, count: int) -> bool:
    return len(seen) >= count


async def _followers(db, user_id, count) -> bool:
    return (await accounts.get_user(db, user_id)).followers_count >= count


@pytest.fixture
async def home_streams(any_redis, feed):
    """A materialized home of a user nobody follows, and streams that send at once
    (settle 0): (store, live, user)."""
    store = RedisTimelineStore(any_redis, max_items=50, ttl_seconds=600, item_ttl_seconds=600)
    users = UsersClient(USERS_API)
    reader = Reader(store, users, Celebrities(store, users, threshold=1000, batch=100))
    user = uuid.uuid4()
    await store.begin_rebuild(user, [])
    await store.finish_rebuild(user)
    yield store, LiveTimeline(reader, store, feed, keepalive=1.0, settle=0.0, grace=10.0), user
    await users.close()


async def test_an_item_the_fanout_brings_late_is_still_sent_once(home_streams) -> None:
    """A newer item reaches the home first (the author's own, written at once; or another
    partition's fan-out was quicker), an older one after it: both go out, each once."""
    store, live, user = home_streams
    older, newer = new_id(), new_id()
    await store.put_items([_fake_item(older, user), _fake_item(newer, user)])
    events = await live.start(user, None)
    seen: list[uuid.UUID] = []
    task = asyncio.create_task(_collect(events, seen))
    await asyncio.sleep(0.2)
    await store.push_to_homes([user], [newer])
    await eventually(lambda: _at_least(seen, 1), what="the newer one")
    await store.push_to_homes([user], [older])  # late
    await eventually(lambda: _at_least(seen, 2), what="the late one")
    await asyncio.sleep(1.5)  # a keep-alive's read: nothing goes out twice
    assert seen == [newer, older]
    live.end_all()
    await asyncio.wait_for(task, 5)


def _fake_item(tweet_id: uuid.UUID, author: uuid.UUID):
    from shared_schemas.internal_api import TweetItem

    return TweetItem(tweet_id, author, "someone", "text", "2026-12-01T00:00:00.000Z")


async def test_a_resume_sends_what_arrived_late_while_the_client_was_away(home_streams) -> None:
    """The client leaves right after a newer item; an older one reaches the home while it
    is away. Resuming from its last id, it gets the late one, and nothing twice."""
    store, live, user = home_streams
    first, late, newer = new_id(), new_id(), new_id()
    await store.put_items([_fake_item(t, user) for t in (first, late, newer)])
    await store.push_to_homes([user], [first])
    events = await live.start(user, None)
    await store.push_to_homes([user], [newer])
    event = await anext(_tweets(events))
    assert item_codec.decode(event.item).tweet_id == newer
    last_id = event.tweet_id
    await events.aclose()  # the client leaves
    await eventually(lambda: _recalled(store, user, last_id), what="the closed stream's record")
    await store.push_to_homes([user], [late])  # arrives while it is away
    again = await live.start(user, last_id)
    resumed = await anext(_tweets(again))
    assert item_codec.decode(resumed.item).tweet_id == late
    await again.aclose()


async def _tweets(events):
    async for event in events:
        if event.kind == "tweet":
            yield event


async def _recalled(store: RedisTimelineStore, user: uuid.UUID, last: uuid.UUID) -> bool:
    return await store.recall_sent(user, last) is not None


async def test_a_new_stream_sends_an_older_item_that_lands_after_it_opened(home_streams) -> None:
    """The caller's own tweet is in their home at once; a friend's, posted a moment
    before it, is still on its way when the stream opens. It goes out when it lands; what
    the home held at the start (the client's page) does not."""
    store, live, user = home_streams
    before, late, own = new_id(), new_id(), new_id()
    await store.put_items([_fake_item(t, user) for t in (before, late, own)])
    await store.push_to_homes([user], [before])
    await store.push_to_homes([user], [own])
    events = await live.start(user, None)
    tweets = _tweets(events)
    first = asyncio.ensure_future(anext(tweets))
    await eventually(lambda: _listening(live), what="the stream open")
    await store.push_to_homes([user], [late])  # below the newest: the fan-out was behind
    event = await asyncio.wait_for(first, 10)
    assert item_codec.decode(event.item).tweet_id == late
    await tweets.aclose()
    await events.aclose()


async def test_a_quiet_stream_lost_resumes_from_its_first_position(home_streams) -> None:
    """No tweet came while the stream was open; the connection drops, a tweet arrives,
    and the client reconnects with the only id it was given: it gets that tweet."""
    store, live, user = home_streams
    head = new_id()
    await store.put_items([_fake_item(head, user)])
    await store.push_to_homes([user], [head])
    events = await live.start(user, None)
    opened = await anext(events)
    assert (opened.kind, opened.tweet_id) == ("position", head)  # before any tweet
    await events.aclose()
    missed = new_id()
    await store.put_items([_fake_item(missed, user)])
    await store.push_to_homes([user], [missed])
    again = await live.start(user, opened.tweet_id)
    resumed = await asyncio.wait_for(anext(_tweets(again)), 10)
    assert item_codec.decode(resumed.item).tweet_id == missed
    await again.aclose()


async def _listening(live: LiveTimeline) -> bool:
    return live.open > 0


async def test_a_resume_sends_the_deletes_made_while_the_client_was_away(home_streams) -> None:
    """The client had an item; it is deleted while the client is away, when no stream
    listens for the message: the resume says so."""
    store, live, user = home_streams
    had, stays = new_id(), new_id()
    await store.put_items([_fake_item(t, user) for t in (had, stays)])
    await store.push_to_homes([user], [had, stays])
    events = await live.start(user, None)
    opened = await anext(events)  # its position: the newest it holds
    await events.aclose()  # the client leaves
    await store.unpush_from_homes([user], [had])  # deleted while it is away
    again = await live.start(user, opened.tweet_id)
    event = await asyncio.wait_for(anext(_kinds(again, "delete")), 10)
    assert event.tweet_id == had
    await again.aclose()


async def test_a_delete_whose_message_is_lost_is_sent_at_the_next_keep_alive(home_streams, monkeypatch) -> None:
    """The change feed's message never comes (its subscriber's connection dropped, say):
    the stream's keep-alive reads the record of removals and sends the delete, once."""
    store, live, user = home_streams
    gone = new_id()
    await store.put_items([_fake_item(gone, user)])
    await store.push_to_homes([user], [gone])
    events = await live.start(user, None)
    seen: list = []
    task = asyncio.create_task(_collect_all(events, seen))
    await eventually(lambda: _listening(live), what="the stream open")
    monkeypatch.setattr(keys, "CHANGES", "nobody-listens:")  # the removal's message goes astray
    await store.unpush_from_homes([user], [gone])
    monkeypatch.undo()
    await eventually(lambda: _has_delete(seen, gone), timeout=10, what="the delete, from the record")
    await asyncio.sleep(2.5)  # two more keep-alives (1 s): it is not sent again
    assert [e.tweet_id for e in seen if e.kind == "delete"] == [gone]
    live.end_all()
    await asyncio.wait_for(task, 5)


async def _kinds(events, kind: str):
    async for event in events:
        if event.kind == kind:
            yield event


async def _collect_all(events, seen: list) -> None:
    async for event in events:
        seen.append(event)


async def _has_delete(seen: list, tweet: uuid.UUID) -> bool:
    return any(e.kind == "delete" and e.tweet_id == tweet for e in seen)
