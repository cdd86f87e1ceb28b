"""`make replay`: what the dead-letter topic holds is applied again, idempotently, unless
the source of truth has moved past it; the command says what it did."""

from __future__ import annotations

import json
import os
import subprocess
import sys
import uuid
from datetime import datetime

import msgspec
from aiokafka import AIOKafkaConsumer, AIOKafkaProducer, TopicPartition
from redis.asyncio import Redis

from shared_schemas import codec, topics
from shared_schemas.events import TweetCreated
from shared_schemas.ids import new_id
from tests.e2e.test_timeline_service import KAFKA, MAX_ITEMS, REDIS_URL
from tests.e2e.timeline_client import Client
from tests.support import ROOT, eventually
from timeline.adapters.store.redis_store import RedisTimelineStore

DLQ = topics.TIMELINE_DEAD_LETTER.name


async def _end_of_dead_letters() -> int:
    tp = TopicPartition(DLQ, 0)
    consumer = AIOKafkaConsumer(bootstrap_servers=KAFKA)
    await consumer.start()
    try:
        return (await consumer.end_offsets([tp]))[tp]
    finally:
        await consumer.stop()


def _replay(*args: str) -> tuple[int, list[dict]]:
    done = subprocess.run(
        [sys.executable, "-m", "timeline.tools.replay", *args],
        capture_output=True,
        text=True,
        cwd=ROOT,
        env=os.environ,
        timeout=120,
    )
    return done.returncode, [json.loads(line) for line in done.stdout.splitlines() if line.startswith("{")]


async def _tweet_event(client: Client, author: str, tweet_id: str) -> TweetCreated:
    item = next(
        t
        for t in (await client.http.get(f"/api/v1/users/{author}/tweets")).json()["tweets"]
        if t["tweet_id"] == tweet_id
    )
    created = datetime.fromisoformat(item["created_at"].replace("Z", "+00:00"))
    return TweetCreated(
        event_id=new_id(),
        occurred_at=created,
        tweet_id=uuid.UUID(tweet_id),
        author_id=uuid.UUID(author),
        username=item["username"],
        text=item["text"],
        created_at=created,
        author_followers_count=1,
    )


async def test_replay_applies_what_was_parked_skips_what_was_undone_and_can_run_twice(client: Client) -> None:
    author, reader = await client.user(), await client.user()
    early = await client.tweet(author, "before the follow")
    await client.page(reader)  # materialized: fan-out reaches it
    await client.follow(reader, author)
    # Only the follow's event brings `early` (its backfill): once it is there, that event
    # is applied, and cannot come late and bring back what the test removes below.
    await eventually(lambda: _ids_are(client, reader, [early]), what="the follow's backfill")
    lost = await client.tweet(author, "its fan-out was parked")
    await eventually(lambda: _ids_are(client, reader, [lost, early]), what="the tweet in the reader's home")
    # What an old worker did on a long outage: the tweet never reached the home.
    redis = Redis.from_url(REDIS_URL)
    await RedisTimelineStore(redis, MAX_ITEMS, 3600, 3600).unpush_from_homes([uuid.UUID(reader)], [uuid.UUID(lost)])
    await redis.aclose()
    assert await client.ids(reader) == [early]
    gone = await client.tweet(author, "deleted after it was parked")
    gone_event = await _tweet_event(client, author, gone)
    assert (await client.http.delete(f"/api/v1/tweet/{gone}", headers={"X-User-ID": author})).status_code == 204
    await eventually(lambda: _ids_are(client, reader, [early]), what="the deleted tweet to leave")

    producer = AIOKafkaProducer(bootstrap_servers=KAFKA)
    await producer.start()
    try:
        start = await _end_of_dead_letters()
        key = author.encode()
        headers = [
            ("dlq.topic", topics.TWEETS.name.encode()),
            ("dlq.partition", b"0"),
            ("dlq.offset", b"7"),
            ("dlq.error", b"users api unreachable"),
        ]
        lost_event = codec.encode(await _tweet_event(client, author, lost))
        # Parked as the worker parks (verbatim, headers), as older workers did (an
        # envelope with the value as text), a deleted tweet's, and bytes that are no event.
        await producer.send_and_wait(DLQ, lost_event, key=key, headers=headers)
        legacy = {
            "error": "timeout",
            "topic": topics.TWEETS.name,
            "partition": 0,
            "offset": 8,
            "key": author,
            "value": lost_event.decode(),
            "failed_at": 0,
        }
        await producer.send_and_wait(DLQ, msgspec.json.encode(legacy), key=key)
        await producer.send_and_wait(DLQ, codec.encode(gone_event), key=key, headers=headers)
        await producer.send_and_wait(DLQ, b"\xff not an event", key=key, headers=headers)
        await producer.send_and_wait(DLQ, lost_event, key=b"someone-else", headers=headers)
    finally:
        await producer.stop()

    status, lines = _replay("--from-offset", str(start), "--key", author)
    outcomes = [line["outcome"] for line in lines if "outcome" in line]
    assert status == 0, lines
    assert outcomes[:3] == ["applied", "applied", "skipped: the tweet was deleted since"], outcomes
    assert outcomes[3].startswith("undecodable") and len(outcomes) == 4  # the other key is not touched
    assert lines[-1]["summary"] == {"applied": 2, "skipped": 1, "undecodable": 1}
    assert lines[-1]["next_offset"] == start + 5 and lines[0]["origin"]["topic"] == topics.TWEETS.name
    assert await client.ids(reader) == [lost, early]  # back, once; the deleted one stays gone

    status, lines = _replay("--from-offset", str(start), "--to-offset", str(start + 1))  # again: harmless
    assert status == 0 and [line["outcome"] for line in lines[:-1]] == ["applied", "applied"]
    assert await client.ids(reader) == [lost, early]


async def _ids_are(client: Client, user: str, expected: list[str]) -> bool:
    return await client.ids(user) == expected
