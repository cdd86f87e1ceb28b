"""The outbox and its relay against real PostgreSQL and Kafka: nothing is lost when the
relay dies between the database commit and the publish, and the follow graph's second
half heals by itself."""

from __future__ import annotations

import asyncio
import os
import uuid

import asyncpg
import sqlalchemy as sa

from shared_schemas import topics
from shared_schemas.events import FollowCreated, TweetCreated
from shared_schemas.ids import utcnow
from tests.integration.conftest import MAX_FOLLOWING
from tests.integration.databases import refusing_connections
from tests.integration.kafka_tail import TopicTail
from tests.support import eventually, stack, unique_name
from users.adapters import catalog, outbox_repo
from users.adapters.tables import followers, outbox
from users.services import accounts, follows
from users.services import tweets as tweet_service

RELAYS = int(os.environ.get("USERS_RELAY_COUNT", "1"))


async def _backlog(db, shard: int) -> int:
    async with db.raw_primary(shard) as conn:
        return await outbox_repo.backlog(conn)


def _tweet_events(events, tweet_id):
    return [(key, e) for key, e in events if isinstance(e, TweetCreated) and e.tweet_id == tweet_id]


async def test_a_tweet_event_reaches_kafka_keyed_by_author(db) -> None:
    author = await accounts.create_user(db, unique_name())
    async with TopicTail(topics.TWEETS) as tail:
        tweet_id = (await tweet_service.publish(db, author.user_id, "hello kafka", None)).tweet_id
        found = await eventually(lambda: _matching(tail, tweet_id), timeout=15, what="the tweet event")
    key, event = found[0]
    assert key == str(author.user_id).encode()
    assert event.text == "hello kafka" and event.username == author.username


async def _matching(tail, tweet_id):
    return _tweet_events(await tail.read(), tweet_id)


async def test_racing_retries_publish_one_event(db) -> None:
    author = await accounts.create_user(db, unique_name())
    key = uuid.uuid4()
    async with TopicTail(topics.TWEETS) as tail:
        results = await asyncio.gather(
            *(tweet_service.publish(db, author.user_id, "one event", key) for _ in range(20))
        )
        tweet_id = results[0].tweet_id
        await eventually(lambda: _matching(tail, tweet_id), timeout=15, what="the tweet event")
        shard = db.map.for_user(author.user_id)
        await eventually(lambda: _is_zero(_backlog(db, shard)), timeout=15, what="the outbox to drain")
        assert len(await _matching(tail, tweet_id)) == 1


async def _is_zero(value) -> bool:
    return await value == 0


async def test_an_event_written_while_the_relay_is_down_goes_out_when_it_returns(db, relay_stopped) -> None:
    author = await accounts.create_user(db, unique_name())
    async with TopicTail(topics.TWEETS) as tail:
        tweet_id = (await tweet_service.publish(db, author.user_id, "written during the outage", None)).tweet_id
        assert await _backlog(db, db.map.for_user(author.user_id)) >= 1  # committed, owed
        await asyncio.sleep(1.0)  # give a (wrongly) running publisher time to show itself
        assert _tweet_events(await tail.read(), tweet_id) == []
        stack("start-apps")
        found = await eventually(lambda: _matching(tail, tweet_id), timeout=20, what="the event after restart")
        assert len(found) == 1


async def test_the_follow_graph_heals_after_a_crash_between_its_halves(db, relay_stopped) -> None:
    follower = await accounts.create_user(db, unique_name())
    followee = await accounts.create_user(db, unique_name())
    await follows.follow(db, follower.user_id, followee.user_id, MAX_FOLLOWING)
    shard = db.map.for_user(followee.user_id)
    edge = (
        sa.select(sa.func.count())
        .select_from(followers)
        .where(followers.c.followee_id == followee.user_id, followers.c.follower_id == follower.user_id)
    )

    async def edge_count() -> int:
        async with db.primaries[shard].connect() as conn:
            return (await conn.execute(edge)).scalar_one()

    assert await edge_count() == 0  # only the first half exists: the relay is down
    assert (await accounts.get_user(db, followee.user_id)).followers_count == 0
    async with TopicTail(topics.FOLLOWS) as tail:
        stack("start-apps")
        await eventually(edge_count, timeout=20, what="the followers edge")
        events = await eventually(lambda: _follow_events(tail, follower.user_id), timeout=20, what="the follow event")
    assert len(events) == 1
    assert (await accounts.get_user(db, followee.user_id)).followers_count == 1
    assert (await accounts.get_user(db, follower.user_id)).following_count == 1


async def test_a_followees_database_down_holds_back_only_the_events_that_need_it(db, relay_stopped) -> None:
    # The relay writes a follow's second half on the followee's database before it
    # publishes the event. Once, that database down failed the whole batch of the
    # follower's database, every pass: nobody's tweets there went out until it was back.
    follower, author = await _user_where(db, lambda d: d == 0), await _user_where(db, lambda d: d == 0)
    followee = await _user_where(db, lambda d: d != 0)  # (database 0 holds the shard map)
    await follows.follow(db, follower.user_id, followee.user_id, MAX_FOLLOWING)  # its event waits
    async with TopicTail(topics.TWEETS) as tweets, TopicTail(topics.FOLLOWS) as follow_events:
        async with refusing_connections(db, followee.user_id):
            for i in range(1, RELAYS + 1):  # (not start-apps: it waits for the Users API's /ready)
                stack("start-app", f"relay-{i}")
            tweet_id = (await tweet_service.publish(db, author.user_id, "another database is down", None)).tweet_id
            await eventually(lambda: _matching(tweets, tweet_id), timeout=20, what="a tweet event on a live database")
            assert await _follow_events(follow_events, follower.user_id) == []  # its second half cannot be written
        found = await eventually(
            lambda: _follow_events(follow_events, follower.user_id), timeout=30, what="the follow event once it is back"
        )
    assert len(found) == 1
    assert (await accounts.get_user(db, followee.user_id)).followers_count == 1


async def _user_where(db, wanted):
    """A new user whose row lives on a database that `wanted` (its id) accepts."""
    while True:
        user = await accounts.create_user(db, unique_name())
        if wanted(db.map.for_user(user.user_id)):
            return user


async def _follow_events(tail, follower_id):
    return [e for _, e in await tail.read() if isinstance(e, FollowCreated) and e.follower_id == follower_id]


async def test_an_outbox_row_wakes_the_relay_at_commit_and_a_rollback_wakes_nobody(db) -> None:
    # The relay sleeps until NOTIFY (the poll is only a fallback, seconds apart): the
    # outbox's own trigger must send it for every writer, and only for committed rows.
    shard = 0
    dsn = db.primaries[shard].url.set(drivername="postgresql").render_as_string(hide_password=False)
    listener = await asyncpg.connect(dsn)
    heard: asyncio.Queue = asyncio.Queue()
    await listener.add_listener(outbox_repo.CHANNEL, lambda *args: heard.put_nowait(args))
    topic = f"test-never-published-{uuid.uuid4()}"  # the rows never leave their transaction
    event = TweetCreated(
        event_id=uuid.uuid4(),
        occurred_at=utcnow(),
        tweet_id=uuid.uuid4(),
        author_id=uuid.uuid4(),
        username="nobody",
        text="never published",
        created_at=utcnow(),
        author_followers_count=0,
    )
    try:
        async with db.primaries[shard].connect() as conn:
            transaction = await conn.begin()
            await outbox_repo.add(conn, topic, "k", event)
            await transaction.rollback()
        await asyncio.sleep(0.5)  # a notification sent for the rollback would have arrived
        assert heard.empty()
        async with db.primaries[shard].begin() as conn:
            await outbox_repo.add(conn, topic, "k", event)
            # Taken out again before the commit: the relay wakes and finds nothing to send.
            await conn.execute(sa.delete(outbox).where(outbox.c.topic == topic))
            await asyncio.sleep(0.3)
            assert heard.empty()  # not before the commit
        await asyncio.wait_for(heard.get(), timeout=10)
    finally:
        await listener.close()


async def test_a_database_whose_wakeups_were_cut_is_drained_while_the_others_keep_the_relay_busy(db) -> None:
    # The relay sleeps until a commit's NOTIFY, and goes over every database when the
    # poll interval passes. A listening connection can be lost (a restart, a failover,
    # a backend ended): that database's commits then wake nobody, and while the other
    # databases' commits keep waking the relay, its rows must still go out within a
    # poll interval or so, not wait for a quiet second that never comes.
    author = await accounts.create_user(db, unique_name())
    quiet = db.map.for_user(author.user_id)
    # A test before may have ended every backend: the relays listen again within a sweep.
    await eventually(lambda: _end_listeners(db.dsns[quiet]), timeout=10, what="a relay listening, then cut off")
    stop = asyncio.Event()
    elsewhere = 0  # users committed on the other databases, each a wakeup

    async def keep_the_others_busy() -> None:
        nonlocal elsewhere
        while not stop.is_set():  # ten users a second, the other databases' share wakes the relay
            user = await accounts.create_user(db, unique_name())
            elsewhere += db.map.for_user(user.user_id) != quiet
            await asyncio.sleep(0.1)

    async def busy_by_now() -> bool:
        return elsewhere >= 5

    busy = asyncio.create_task(keep_the_others_busy())
    try:
        await eventually(busy_by_now, timeout=30, what="commits on the other databases")
        async with TopicTail(topics.TWEETS) as tail:
            tweet_id = (await tweet_service.publish(db, author.user_id, "no wakeup comes", None)).tweet_id
            await eventually(lambda: _matching(tail, tweet_id), timeout=6, what="the tweet event while others write")
    finally:
        stop.set()
        await busy


async def _end_listeners(dsn: str) -> bool:
    """End every connection that LISTENs on this database (the relays' wakeups): True
    if there was one."""
    conn = await asyncpg.connect(catalog.plain_dsn(dsn))
    try:
        ended = await conn.fetchval(
            "SELECT count(pg_terminate_backend(pid)) FROM pg_stat_activity"
            " WHERE datname = current_database() AND query ILIKE 'LISTEN%' AND pid <> pg_backend_pid()"
        )
        return ended >= 1
    finally:
        await conn.close()
