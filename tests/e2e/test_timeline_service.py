"""The Timeline Service's promises, through the gateway, with the real worker, Redis and
Kafka behind it (issue: the whole read model)."""

from __future__ import annotations

import asyncio
import os
import uuid
from datetime import UTC, datetime

import msgspec
import pytest
from aiokafka import AIOKafkaProducer
from redis.asyncio import Redis

from shared_schemas import codec, topics
from shared_schemas.events import TweetCreated
from shared_schemas.ids import new_id
from shared_schemas.internal_api import TweetItem
from tests.e2e.timeline_client import Client
from tests.integration.kafka_tail import TopicTail
from tests.support import eventually
from timeline.adapters.store import keys
from timeline.adapters.store.redis_store import RedisTimelineStore

THRESHOLD = int(os.environ.get("TIMELINE_CELEBRITY_THRESHOLD", "10000"))
MAX_ITEMS = int(os.environ.get("TIMELINE_MAX_ITEMS", "800"))
REDIS_URL = os.environ.get("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0")
KAFKA = os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092")


@pytest.fixture
async def redis():
    connection = Redis.from_url(REDIS_URL)
    yield connection
    await connection.aclose()


async def _produce(key: str, value: bytes) -> None:
    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        await producer.send_and_wait(topics.TWEETS.name, value, key=key.encode())
    finally:
        await producer.stop()


def _tweet_event(author: str, username: str, tweet_id: uuid.UUID, text: str) -> TweetCreated:
    now = datetime.now(UTC)
    return TweetCreated(
        event_id=new_id(),
        occurred_at=now,
        tweet_id=tweet_id,
        author_id=uuid.UUID(author),
        username=username,
        text=text,
        created_at=now,
    )


async def test_an_event_delivered_twice_or_late_leaves_one_copy_in_place(client: Client) -> None:
    author, reader = await client.user(), await client.user()
    await client.follow(reader, author)
    await client.page(reader)  # materialize
    # A real tweet in the home first: the follow is whole ("who follows the author" is
    # written by the relay), so the synthetic events below find the reader. (They skip
    # the outbox, so nothing else orders them after the follow.)
    real = await client.tweet(author, "real")
    await eventually(lambda: _has(client, reader, 1), what="the real tweet")
    username = (await client.http.get(f"/api/v1/users/{author}")).json()["username"]
    older, newer = new_id(), new_id()
    # Newest first, then the same event again, then the older one late.
    for tweet_id, text in ((newer, "newer"), (newer, "newer"), (older, "older")):
        await _produce(author, codec.encode(_tweet_event(author, username, tweet_id, text)))
    ids = await eventually(lambda: _has(client, reader, 3), what="both synthetic tweets")
    assert ids == [str(newer), str(older), real]


async def _has(client: Client, reader: str, count: int):
    ids = await client.ids(reader)
    return ids if len(ids) >= count else None


async def test_45_tweets_paged_by_20_while_5_more_arrive_come_back_once_in_order(client: Client) -> None:
    author, reader = await client.user(), await client.user()
    await client.follow(reader, author)
    await client.page(reader)
    posted = [await client.tweet(author, f"tweet {i}") for i in range(45)]
    # One author's events share a partition, so once the last is in, all are.
    await eventually(lambda: _top_is(client, reader, [posted[-1]]), timeout=20, what="45 tweets delivered")
    seen, cursor, arrived = [], None, []
    while True:
        page = await client.page(reader, 20, cursor)
        seen += [t["tweet_id"] for t in page["tweets"]]
        if len(arrived) < 5:  # new tweets land on top while the reader pages down
            arrived += [await client.tweet(author, f"late {len(arrived) + i}") for i in range(5 - len(arrived))]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == posted[::-1]
    newest_first = arrived[::-1]
    await eventually(lambda: _top_is(client, reader, newest_first), what="the late tweets on top")


async def _top_is(client: Client, reader: str, expected: list[str]) -> bool:
    return (await client.ids(reader, len(expected))) == expected


async def _in_first_page(client: Client, reader: str, expected: list[str]) -> bool:
    return set(expected) <= set(await client.ids(reader, 20))


@pytest.mark.skipif(THRESHOLD > 5, reason="needs a low TIMELINE_CELEBRITY_THRESHOLD (make test sets 3)")
async def test_celebrity_and_normal_tweets_interleave_across_pages_without_duplicates(
    client: Client, redis: Redis
) -> None:
    celebrity, normal, reader = await client.user(), await client.user(), await client.user()
    fans = [await client.user() for _ in range(THRESHOLD - 1)]
    for fan in (reader, *fans):
        await client.follow(fan, celebrity)
    await client.follow(reader, normal)
    await eventually(lambda: _followers(client, celebrity, THRESHOLD), what="celebrity status")
    await client.page(reader)
    posted = []
    for i in range(3):
        posted.append(await client.tweet(celebrity, f"celebrity {i}"))
        posted.append(await client.tweet(normal, f"normal {i}"))
    await eventually(lambda: _has(client, reader, 6), what="six tweets")
    assert await client.all_ids(reader, 2) == posted[::-1]
    # The celebrity's tweets were not fanned out: they are merged in at read time.
    home = await redis.lrange(keys.home(uuid.UUID(reader)).ids, 0, -1)
    assert {uuid.UUID(bytes=i) for i in home}.isdisjoint({uuid.UUID(t) for t in posted[0::2]})


async def _followers(client: Client, user: str, count: int) -> bool:
    return (await client.http.get(f"/api/v1/users/{user}")).json()["followers_count"] >= count


async def test_unfollow_delete_and_backfill_take_effect_within_seconds(client: Client) -> None:
    author, other, reader, witness = [await client.user() for _ in range(4)]
    kept = await client.tweet(other, "stays")
    gone = [await client.tweet(author, f"author {i}") for i in range(3)]
    await client.follow(reader, other)
    await client.page(reader)
    await client.follow(reader, author)  # backfill brings the author's older tweets
    await eventually(lambda: _has(client, reader, 4), what="the backfill")
    deleted = gone.pop()
    assert (await client.http.delete(f"/api/v1/tweet/{deleted}", headers={"X-User-ID": author})).status_code == 204
    await eventually(lambda: _lacks(client, reader, deleted), what="the deleted tweet to leave")
    await client.unfollow(reader, author)
    await eventually(lambda: _equals(client, reader, [kept]), what="the unfollowed author's tweets to leave")
    # A follower who stays shows when the new tweet has been fanned out: only then does
    # the reader's home lacking it mean the unfollow stopped it.
    await client.follow(witness, author)
    await client.page(witness)
    late = await client.tweet(author, "after unfollow")
    await eventually(lambda: _holds(client, witness, late), what="the new tweet to reach a remaining follower")
    assert await client.ids(reader) == [kept]


async def _holds(client: Client, reader: str, tweet_id: str) -> bool:
    return tweet_id in await client.ids(reader)


async def _lacks(client: Client, reader: str, tweet_id: str) -> bool:
    return tweet_id not in await client.ids(reader)


async def _equals(client: Client, reader: str, expected: list[str]) -> bool:
    return await client.ids(reader) == expected


async def test_timelines_survive_a_redis_flush(client: Client, redis: Redis) -> None:
    authors = [await client.user() for _ in range(2)]
    readers = [await client.user() for _ in range(2)]
    for reader in readers:
        for author in authors:
            await client.follow(reader, author)
        await client.page(reader)
    for i in range(4):
        await client.tweet(authors[i % 2], f"before the flush {i}")
    before = {}
    for reader in readers:
        before[reader] = await eventually(lambda r=reader: _has(client, r, 4), what="four tweets")
    await redis.flushdb()
    for reader in readers:
        assert await client.ids(reader) == before[reader]


async def test_a_poison_event_is_dead_lettered_and_the_partition_moves_on(client: Client) -> None:
    author, reader = await client.user(), await client.user()
    await client.follow(reader, author)
    await client.page(reader)
    async with TopicTail(topics.TIMELINE_DEAD_LETTER) as dead:
        await _produce(author, b'{"type": "tweet.created", "this is": "not an event"')
        behind = await client.tweet(author, "behind the poison")  # same key: same partition
        await eventually(lambda: _has(client, reader, 1), what="the event behind the poison")
        assert await client.ids(reader) == [behind]
        letters = await eventually(dead.records, what="the dead letter")
    letter = letters[0]
    headers = dict(letter.headers)
    assert letter.value == b'{"type": "tweet.created", "this is": "not an event"' and letter.key == author.encode()
    assert headers["dlq.topic"] == topics.TWEETS.name.encode() and {"dlq.error", "dlq.partition", "dlq.offset"} <= set(
        headers
    )


@pytest.mark.skipif(THRESHOLD > 5, reason="needs a low TIMELINE_CELEBRITY_THRESHOLD (make test sets 3)")
async def test_crossing_the_celebrity_threshold_either_way_keeps_every_timeline_right(client: Client) -> None:
    author = await client.user()
    fans = [await client.user() for _ in range(THRESHOLD - 1)]
    for fan in fans:
        await client.follow(fan, author)
        await client.page(fan)
    await eventually(lambda: _followers(client, author, THRESHOLD - 1), what="followers below the threshold")
    fanned_out = await client.tweet(author, "before becoming a celebrity")
    for fan in fans:
        await eventually(lambda f=fan: _top_is(client, f, [fanned_out]), what="fan-out to each fan")

    newcomer = await client.user()
    await client.page(newcomer)
    await client.follow(newcomer, author)  # the author is now a celebrity
    await eventually(lambda: _followers(client, author, THRESHOLD), what="celebrity status")
    merged = await client.tweet(author, "as a celebrity")
    for fan in (*fans, newcomer):
        await eventually(lambda f=fan: _equals(client, f, [merged, fanned_out]), what="merged tweets, each once")

    await client.unfollow(newcomer, author)  # below the threshold again
    await eventually(lambda: _below(client, author, THRESHOLD), what="normal status")
    again = await client.tweet(author, "ordinary again")
    for fan in fans:
        await eventually(lambda f=fan: _equals(client, f, [again, merged, fanned_out]), what="all three, each once")
    assert await client.ids(newcomer) == []


async def _below(client: Client, user: str, count: int) -> bool:
    return (await client.http.get(f"/api/v1/users/{user}")).json()["followers_count"] < count


async def test_bad_limit_or_cursor_is_a_400_with_detail(client: Client) -> None:
    reader = await client.user()
    for params in (
        {"limit": 0},
        {"limit": 101},
        {"limit": "x"},
        {"next_cursor": "forged"},
        {"next_cursor": "AZoSIt2Ld1anvRo7I_rLtwAAAAAAAAAA"},
    ):
        response = await client.http.get("/api/v1/timeline", headers={"X-User-ID": reader}, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.headers["content-type"].startswith("application/json") and response.json()["detail"]


async def test_a_cursor_from_the_users_service_is_not_accepted_by_the_timeline(client: Client) -> None:
    author = await client.user()
    for i in range(3):
        await client.tweet(author, f"listing {i}")
    listing = (await client.http.get(f"/api/v1/users/{author}/tweets", params={"limit": 1})).json()
    response = await client.http.get(
        "/api/v1/timeline", headers={"X-User-ID": author}, params={"next_cursor": listing["next_cursor"]}
    )
    assert response.status_code == 400


WORKER_COUNT = int(os.environ.get("TIMELINE_WORKER_COUNT", "1"))


@pytest.mark.skipif(WORKER_COUNT < 2, reason="needs two workers (make test runs two)")
async def test_a_worker_leaving_mid_stream_loses_nothing_and_repeats_nothing(client: Client) -> None:
    from tests.support import stack

    authors = [await client.user() for _ in range(4)]
    reader = await client.user()
    for author in authors:
        await client.follow(reader, author)
    await client.page(reader)
    posted = [await client.tweet(authors[i % 4], f"stream {i}") for i in range(10)]
    await asyncio.to_thread(stack, "stop-app", "worker-2")  # SIGTERM: drain, commit, leave
    try:
        posted += [await client.tweet(authors[i % 4], f"stream {i}") for i in range(10, 20)]
        ids = await eventually(lambda: _has(client, reader, 20), timeout=30, what="all 20 tweets")
    finally:
        await asyncio.to_thread(stack, "start-apps")
    assert sorted(ids, reverse=True) == ids and set(ids) == set(posted) and len(ids) == 20


@pytest.mark.skipif(THRESHOLD > 5 or MAX_ITEMS > 60, reason="needs make test's low threshold and small windows")
async def test_paging_past_a_celebritys_cached_window_skips_nothing(client: Client) -> None:
    celebrity, normal, reader = await client.user(), await client.user(), await client.user()
    for fan in [reader, *[await client.user() for _ in range(THRESHOLD - 1)]]:
        await client.follow(fan, celebrity)
    await client.follow(reader, normal)
    await eventually(lambda: _followers(client, celebrity, THRESHOLD), what="celebrity status")
    await client.page(reader)
    posted, normals = [], []
    for i in range(MAX_ITEMS + 5):  # more than the celebrity's list keeps
        if i % 10 == 0:
            normals.append(await client.tweet(normal, f"normal {i}"))
            posted.append(normals[-1])
        posted.append(await client.tweet(celebrity, f"celebrity {i}"))
    # Each author's tweets arrive in order (one partition per author), the two authors'
    # independently of each other: wait for the newest of each.
    await eventually(
        lambda: _in_first_page(client, reader, [posted[-1], normals[-1]]),
        timeout=20,
        what="the newest tweet of each author",
    )
    assert await client.all_ids(reader, 20) == posted[::-1]


@pytest.mark.skipif(MAX_ITEMS > 60, reason="needs make test's small windows")
async def test_a_full_timeline_that_loses_an_author_still_pages_down_to_the_oldest_tweet(client: Client) -> None:
    """A home at its cap lost its oldest tweets to the cap; an unfollow then takes the
    dropped author's out and leaves it below the cap. Paging down must still go on past
    it to the kept author's oldest tweets (from the Users Service), not stop as if the
    home held everything."""
    kept, dropped, reader = await client.user(), await client.user(), await client.user()
    await client.follow(reader, kept)
    await client.follow(reader, dropped)
    await client.page(reader)  # read: its home is kept in Redis from now on
    kept_tweets, dropped_tweets = [], []
    for i in range(MAX_ITEMS + 10):  # past the cap: the oldest are trimmed from the home
        if i % 2:
            dropped_tweets.append(await client.tweet(dropped, f"dropped {i}"))
        else:
            kept_tweets.append(await client.tweet(kept, f"kept {i}"))
    await eventually(
        lambda: _in_first_page(client, reader, [kept_tweets[-1], dropped_tweets[-1]]),
        timeout=20,
        what="the newest tweet of each author",
    )
    await client.unfollow(reader, dropped)

    async def only_kept() -> bool:
        return await client.all_ids(reader, 20) == kept_tweets[::-1]

    await eventually(only_kept, timeout=20, what="every kept tweet, the oldest past the home included")


async def test_a_delete_that_reaches_a_home_mid_rebuild_is_not_undone_when_the_rebuild_lands(
    client: Client, redis: Redis
) -> None:
    """A rebuild reads PostgreSQL, the author deletes a tweet it read, the worker applies
    the delete, and only then does the rebuild land. The test plays the slow rebuild (its
    mark, then its landing of what it read) around the real delete; the reader must not
    see the deleted tweet come back."""
    author, reader, witness = await client.user(), await client.user(), await client.user()
    await client.follow(reader, author)
    await client.follow(witness, author)
    posted = []
    for text in ("kept", "deleted"):
        response = await client.http.post("/api/v1/tweet", headers={"X-User-ID": author}, json={"text": text})
        assert response.status_code == 201, response.text
        body = {**response.json(), "user_id": author, "username": "whoever", "text": text}
        posted.append(msgspec.convert(body, TweetItem))
    kept, deleted = posted
    await eventually(lambda: _has(client, witness, 2), what="both tweets in a reading follower's home")
    store = RedisTimelineStore(redis, MAX_ITEMS, ttl_seconds=3600, item_ttl_seconds=3600)
    reader_id = uuid.UUID(reader)
    assert await store.begin_rebuild(reader_id, take_over=False)  # nobody had read the reader's home
    read = [deleted, kept]  # what its read of PostgreSQL found, before the delete
    gone = await client.http.delete(f"/api/v1/tweet/{deleted.tweet_id}", headers={"X-User-ID": author})
    assert gone.status_code == 204

    # The worker's walk of the author's followers reaches the witness and the reader
    # (the witness's home itself: its pages lack the tweet at once, the item gone).
    async def fanned_out() -> bool:
        return deleted.tweet_id.bytes not in await store.home_ids(uuid.UUID(witness))

    await eventually(fanned_out, what="the delete's fan-out")
    await store.finish_rebuild(reader_id, [], b"".join(t.tweet_id.bytes for t in read), read)
    assert await client.ids(reader) == [str(kept.tweet_id)]


@pytest.mark.skipif(THRESHOLD > 5, reason="needs a low TIMELINE_CELEBRITY_THRESHOLD (make test sets 3)")
async def test_a_read_while_another_process_fills_a_celebritys_lost_list_waits_for_all_of_it(
    client: Client, redis: Redis
) -> None:
    """After a lost Redis, a celebrity's list is filled from PostgreSQL by the first
    reader who needs it. The test plays that slow filler around a real read: the read
    must neither merge the list while it holds only what fan-out pushed since (a page
    that says the celebrity has nothing older), nor fill it again, but wait and serve
    all of it."""
    star = await client.user()
    fans = [await client.user() for _ in range(THRESHOLD)]
    for fan in fans:
        await client.follow(fan, star)
    await eventually(lambda: _followers(client, star, THRESHOLD), what="celebrity status")
    for fan in fans:
        await client.page(fan)  # their homes merge the star's list from now on
    older = [await client.tweet(star, f"before the loss {i}") for i in range(3)]
    await eventually(lambda: _equals(client, fans[0], older[::-1]), what="the star's tweets merged")
    listing = keys.celebrity(uuid.UUID(star))
    await redis.delete(listing.marker, listing.ids)  # the list is lost
    store = RedisTimelineStore(redis, MAX_ITEMS, ttl_seconds=3600, item_ttl_seconds=3600)
    assert await store.begin_celebrity_list(uuid.UUID(star))  # another process fills it
    newest = await client.tweet(star, "while the list is filled")

    async def pushed_meanwhile() -> bool:  # the worker's push into the list being filled
        return uuid.UUID(newest).bytes in await store.celebrity_ids(uuid.UUID(star))

    await eventually(pushed_meanwhile, what="the new tweet in the list being filled")
    reading = asyncio.ensure_future(client.ids(fans[1]))
    await asyncio.sleep(0.3)  # the read may not answer before the fill lands (a fixed
    assert not reading.done()  # sleep only proves it waits; the assertions below decide)
    items = [TweetItem(uuid.UUID(t), uuid.UUID(star), "star", "", "2026-01-01T00:00:00.000Z") for t in [*older[::-1]]]
    assert await store.finish_celebrity_list(uuid.UUID(star), items)
    assert await asyncio.wait_for(reading, 10) == [newest, *older[::-1]]
