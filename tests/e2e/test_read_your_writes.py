"""API.md, Timeline, "Read your own writes": a tweet that got 201 is in its author's own
timeline from the author's next request on, and a deleted one gone from it, even while
the fan-out is stopped; and the POST still succeeds when the Timeline Service is down
(docs/decisions/0016)."""

from __future__ import annotations

import asyncio
import os

import pytest

from tests.e2e.timeline_client import Client
from tests.support import eventually, stack

WORKERS = [f"worker-{i}" for i in range(1, int(os.environ.get("TIMELINE_WORKER_COUNT", "1")) + 1)]


@pytest.fixture
def fanout_stopped():
    """Every fan-out worker is down for the test body, and back up afterwards."""
    for worker in WORKERS:
        stack("stop-app", worker)
    try:
        yield
    finally:
        stack("start-apps")


async def test_the_author_reads_a_tweet_and_its_delete_at_once_with_the_fanout_stopped(
    client: Client, fanout_stopped
) -> None:
    author, follower = await client.user(), await client.user()
    await client.follow(follower, author)
    await client.page(author)  # the author's home is materialized: nothing rebuilds it from PostgreSQL
    await client.page(follower)
    tweet = await client.tweet(author, "mine, at once")
    assert await client.ids(author) == [tweet], "the very next request has it"
    assert tweet not in await client.ids(follower), "no fan-out ran: the author's home alone has it"
    response = await client.http.delete(f"/api/v1/tweet/{tweet}", headers={"X-User-ID": author})
    assert response.status_code == 204
    assert await client.ids(author) == [], "the very next request no longer has it"


async def test_authors_posting_at_once_each_read_their_own_tweet_with_the_fanout_stopped(
    client: Client, fanout_stopped
) -> None:
    """Concurrent POSTs reach the Timeline API together, in batches (docs/decisions/0021):
    each author's home gets their own tweet, and nobody else's."""
    authors = await asyncio.gather(*(client.user() for _ in range(40)))
    await asyncio.gather(*(client.page(author) for author in authors))
    tweets = await asyncio.gather(*(client.tweet(author, f"at once, by {i}") for i, author in enumerate(authors)))
    homes = await asyncio.gather(*(client.ids(author) for author in authors))
    assert homes == [[tweet] for tweet in tweets]


async def test_a_tweet_succeeds_while_the_timeline_service_is_down_and_arrives_later(client: Client) -> None:
    author = await client.user()
    await client.page(author)
    stack("stop-app", "timeline-api")
    try:
        tweet = await client.tweet(author, "posted while the timeline is down")  # asserts the 201
    finally:
        stack("start-apps")
    await eventually(lambda: _has(client, author, tweet), timeout=20, what="the fan-out's delivery")


async def _has(client: Client, user: str, tweet_id: str) -> bool:
    return tweet_id in await client.ids(user)
