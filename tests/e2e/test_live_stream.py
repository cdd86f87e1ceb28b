"""API.md, Timeline, "Live updates": every sentence, through the gateway, read by a real
HTTP client (tests/e2e/sse.py), reconnects and a stopping API process included. The
stack's keep-alive is 2 s under `make test` (TIMELINE_STREAM_KEEPALIVE_SECONDS)."""

from __future__ import annotations

import asyncio
import os
import time
import uuid

import httpx

from tests.e2e.sse import open_stream
from tests.e2e.timeline_client import Client
from tests.support import GATEWAY, eventually, stack

THRESHOLD = int(os.environ.get("TIMELINE_CELEBRITY_THRESHOLD", "10000"))
KEEPALIVE = float(os.environ.get("TIMELINE_STREAM_KEEPALIVE_SECONDS", "10"))


async def _followers(client: Client, user: str, count: int) -> bool:
    return (await client.http.get(f"/api/v1/users/{user}")).json()["followers_count"] >= count


async def _celebrity(client: Client) -> str:
    star = await client.user()
    for _ in range(THRESHOLD):
        await client.follow(await client.user(), star)
    await eventually(lambda: _followers(client, star, THRESHOLD), what="celebrity status")
    return star


async def test_tweets_of_followed_authors_celebrities_and_the_caller_arrive_in_order_with_ids(client: Client) -> None:
    reader, author, star = await client.user(), await client.user(), await _celebrity(client)
    await client.follow(reader, author)
    await client.follow(reader, star)
    await client.page(reader)
    async with open_stream(client.http, reader) as stream:
        posted = [
            await client.tweet(author, "followed"),
            await client.tweet(star, "a celebrity: merged at read time, never fanned out"),
            await client.tweet(reader, "the caller's own"),
        ]
        events = await stream.tweets(3)
    # Each once. In time order too, unless the fan-out took longer than the stream's settle
    # time (0.25 s) for one of them: a late item still comes, once (decision 0017).
    assert sorted(e.json()["tweet_id"] for e in events) == posted
    assert all(e.id for e in events) and len({e.id for e in events}) == 3, "each id resumes past its event"
    assert events[1].json()["text"].startswith("a celebrity") and events[1].json()["username"]
    page = await client.page(reader, 3)
    assert [t["tweet_id"] for t in page["tweets"]] == posted[::-1], "the stream and the timeline agree"


async def test_a_delete_is_an_event_and_keep_alives_come_in_between(client: Client) -> None:
    reader, author = await client.user(), await client.user()
    await client.follow(reader, author)
    async with open_stream(client.http, reader) as stream:
        tweet = await client.tweet(author, "soon gone")
        assert (await stream.tweets(1))[0].json()["tweet_id"] == tweet
        response = await client.http.delete(f"/api/v1/tweet/{tweet}", headers={"X-User-ID": author})
        assert response.status_code == 204
        deleted = await stream.next(15)
        assert deleted.kind == "delete" and deleted.json() == {"tweet_id": tweet}
        started = time.monotonic()
        comment = await stream.next(KEEPALIVE * 3, comments=True)
        assert comment.kind == "comment" and comment.data == "keep-alive", comment
        print(f"[stream] a keep-alive after {time.monotonic() - started:.1f} s (every {KEEPALIVE:g} s)")


async def test_a_reconnect_with_the_last_id_replays_what_was_missed_then_goes_live(client: Client) -> None:
    reader, author = await client.user(), await client.user()
    await client.follow(reader, author)
    async with open_stream(client.http, reader) as stream:
        first = await client.tweet(author, "seen")
        last_id = (await stream.tweets(1))[0].id
    missed = [await client.tweet(author, f"missed {i}") for i in range(5)]
    await eventually(lambda: _in_home(client, reader, missed[-1]), what="delivery while away")
    async with open_stream(client.http, reader, last_event_id=last_id) as stream:
        replayed = await stream.tweets(5)
        assert [e.json()["tweet_id"] for e in replayed] == missed, "oldest first, nothing before the last id"
        live = await client.tweet(author, "live again")
        assert (await stream.tweets(1))[0].json()["tweet_id"] == live
    # An id is a valid prev_cursor too.
    response = await client.http.get(
        "/api/v1/timeline", headers={"X-User-ID": reader}, params={"prev_cursor": last_id, "limit": 2}
    )
    assert [t["tweet_id"] for t in response.json()["tweets"]] == missed[:2][::-1]
    assert first not in [t["tweet_id"] for t in response.json()["tweets"]]


async def test_a_quiet_stream_that_drops_resumes_from_the_id_it_was_given_at_the_start(client: Client) -> None:
    # No tweet came while it was open: without an id from the start, the client would
    # reconnect with none and never get what was posted while it was away.
    reader, author = await client.user(), await client.user()
    await client.follow(reader, author)
    await client.tweet(author, "before the stream")
    async with open_stream(client.http, reader) as stream:
        await eventually(lambda: _given_an_id(stream), what="the stream's first id")
        last_id = stream.last_id
    missed = await client.tweet(author, "while away")
    async with open_stream(client.http, reader, last_event_id=last_id) as stream:
        assert [e.json()["tweet_id"] for e in await stream.tweets(1)] == [missed]


async def _given_an_id(stream) -> bool:
    return stream.last_id is not None


async def test_more_than_a_hundred_missed_is_a_gap_then_the_newest_hundred(client: Client) -> None:
    reader, authors = await client.user(), [await client.user() for _ in range(3)]
    for author in authors:
        await client.follow(reader, author)
    async with open_stream(client.http, reader) as stream:
        await client.tweet(authors[0], "seen")
        last_id = (await stream.tweets(1))[0].id
    missed = []
    for i in range(105):  # three authors: no one of them meets the per-user rate limit
        missed.append(await client.tweet(authors[i % 3], f"missed {i}"))
    await eventually(lambda: _in_home(client, reader, missed[-1]), what="delivery while away")
    async with open_stream(client.http, reader, last_event_id=last_id) as stream:
        gap = await stream.next()
        assert gap.kind == "gap", gap
        replayed = await stream.tweets(100)
    assert [e.json()["tweet_id"] for e in replayed] == missed[-100:]
    # The gap's token pages the rest: everything from the last id on, none skipped.
    token, rest = gap.json()["prev_cursor"], []
    while True:
        page = (
            await client.http.get(
                "/api/v1/timeline", headers={"X-User-ID": reader}, params={"prev_cursor": token, "limit": 100}
            )
        ).json()
        if not page["tweets"]:
            break
        rest += [t["tweet_id"] for t in page["tweets"]][::-1]
        token = page["prev_cursor"]
    assert rest == missed


async def test_a_fifth_stream_of_one_caller_is_a_429_and_errors_before_the_stream_are_json(client: Client) -> None:
    caller = await client.user()
    async with (
        open_stream(client.http, caller) as one,
        open_stream(client.http, caller) as two,
        open_stream(client.http, caller) as three,
        open_stream(client.http, caller) as four,
    ):
        assert {s.response.status_code for s in (one, two, three, four)} == {200}
        async with open_stream(client.http, caller) as fifth:
            assert fifth.response.status_code == 429
            assert fifth.response.json()["detail"] and fifth.response.headers["retry-after"]
    # Closed streams give their places back (once the server has seen the clients go).
    await eventually(lambda: _opens(client, caller), what="a place given back")
    for user, last_id, status in (
        ("nobody", None, 400),
        (str(uuid.uuid4()), None, 404),
        (caller, "not-an-id-we-issued", 400),
    ):
        async with open_stream(client.http, user, last_event_id=last_id) as refused:
            assert refused.response.status_code == status
            assert refused.response.headers["content-type"].startswith("application/json")
            assert refused.response.json()["detail"]


async def test_a_stopping_api_process_ends_its_streams_cleanly_and_clients_resume(client: Client) -> None:
    reader, author = await client.user(), await client.user()
    await client.follow(reader, author)
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=30) as http:
        async with open_stream(http, reader) as stream:
            await client.tweet(author, "before the stop")
            last_id = (await stream.tweets(1))[0].id
            started = time.monotonic()
            stopping = asyncio.create_task(asyncio.to_thread(stack, "stop-app", "timeline-api"))
            while True:
                try:
                    await stream.next(20)
                except EOFError:
                    break
            took = time.monotonic() - started
            assert stream.ended, "the response ended as a response does, not by a broken connection"
            await stopping
        print(f"[stream] a stopping process ended its stream in {took:.1f} s")
        missed = await client.tweet(author, "while the process was down")
        await asyncio.to_thread(stack, "start-apps")
        async with open_stream(http, reader, last_event_id=last_id) as stream:
            assert (await stream.tweets(1))[0].json()["tweet_id"] == missed


async def _opens(client: Client, user: str) -> bool:
    async with open_stream(client.http, user) as stream:
        return stream.response.status_code == 200


async def _in_home(client: Client, user: str, tweet_id: str) -> bool:
    return tweet_id in await client.ids(user, 100)
