"""API.md, Timeline, "Refreshing: items newer than what a client has": every sentence,
through the gateway, with the real worker fanning out."""

from __future__ import annotations

import asyncio
import os

import httpx

from tests.e2e.timeline_client import Client
from tests.support import eventually, stack

THRESHOLD = int(os.environ.get("TIMELINE_CELEBRITY_THRESHOLD", "10000"))
MAX_ITEMS = int(os.environ.get("TIMELINE_MAX_ITEMS", "800"))


async def _refresh(client: Client, user: str, token: str, limit: int) -> dict:
    response = await client.http.get(
        "/api/v1/timeline", headers={"X-User-ID": user}, params={"prev_cursor": token, "limit": limit}
    )
    assert response.status_code == 200, response.text
    return response.json()


async def _walk_up(client: Client, user: str, token: str, limit: int) -> tuple[list[str], str]:
    seen = []
    while True:
        page = await _refresh(client, user, token, limit)
        ids = [t["tweet_id"] for t in page["tweets"]]
        assert ids == sorted(ids, reverse=True), "newest first within a page"
        assert page["next_cursor"] is None
        if not ids:
            assert page["prev_cursor"] == token, "at the head, the same token back"
            return seen, token
        seen += ids[::-1]
        token = page["prev_cursor"]


async def _followers(client: Client, user: str, count: int) -> bool:
    return (await client.http.get(f"/api/v1/users/{user}")).json()["followers_count"] >= count


async def test_every_page_carries_prev_cursor_and_an_empty_one_null(client: Client) -> None:
    lonely = await client.user()
    empty = await client.page(lonely)
    assert empty["tweets"] == [] and empty["prev_cursor"] is None and empty["next_cursor"] is None
    await client.tweet(lonely, "the only one")
    page = await eventually(lambda: _nonempty(client, lonely), what="the tweet in its author's home")
    assert isinstance(page["prev_cursor"], str) and page["prev_cursor"]


async def _nonempty(client: Client, user: str) -> dict | None:
    page = await client.page(user)
    return page if page["tweets"] else None


async def test_walking_prev_cursor_reaches_the_head_without_gap_or_repeat(client: Client) -> None:
    author, celebrity, reader = await client.user(), await client.user(), await client.user()
    await client.follow(reader, author)
    for _ in range(THRESHOLD - 1):
        await client.follow(await client.user(), celebrity)
    await client.follow(reader, celebrity)
    await eventually(lambda: _followers(client, celebrity, THRESHOLD), what="celebrity status")
    first = await client.tweet(author, "the one the client has")
    await eventually(lambda: _has(client, reader, first), what="the first tweet delivered")
    token = (await client.page(reader, 1))["prev_cursor"]
    newer = []
    for i in range(7):  # fanned-out and celebrity tweets interleaved
        newer.append(await client.tweet(author if i % 2 else celebrity, f"newer {i}"))
    await eventually(lambda: _has(client, reader, newer[-1]), what="the last tweet delivered")
    await eventually(lambda: _has(client, reader, newer[-2]), what="the one before delivered")
    seen, head = await _walk_up(client, reader, token, 2)
    assert seen == newer, "each newer item once, oldest first across pages, none skipped"
    again = await _refresh(client, reader, head, 2)
    assert again["tweets"] == [] and again["prev_cursor"] == head, "nothing new: the same token back, to poll with"


async def test_a_client_away_past_the_cached_window_still_gets_everything(client: Client) -> None:
    author, reader = await client.user(), await client.user()
    await client.follow(reader, author)
    first = await client.tweet(author, "seen before going away")
    await eventually(lambda: _has(client, reader, first), what="delivery")
    token = (await client.page(reader, 1))["prev_cursor"]
    missed = [await client.tweet(author, f"while away {i}") for i in range(MAX_ITEMS + 5)]
    await eventually(lambda: _has(client, reader, missed[-1]), timeout=30, what="the last delivered")
    seen, _ = await _walk_up(client, reader, token, 100)
    assert seen == missed


async def test_both_cursors_or_a_forged_one_is_a_400(client: Client, api: httpx.Client) -> None:
    user = await client.user()
    await client.tweet(user, "one")
    await client.tweet(user, "two")
    page = await eventually(lambda: _two(client, user), what="both in the home")
    both = {"next_cursor": page["next_cursor"], "prev_cursor": page["prev_cursor"]}
    token = page["prev_cursor"]
    # One character changed mid-token (its last ones may already be "AA", or encode
    # only padding bits): a token the server did not make.
    forged = token[:10] + ("B" if token[10] == "A" else "A") + token[11:]
    for params in (both, {"prev_cursor": "not-a-token"}, {"prev_cursor": forged}):
        response = api.get("/api/v1/timeline", headers={"X-User-ID": user}, params=params)
        assert response.status_code == 400, (params, response.text)
        assert response.json()["detail"]


async def _two(client: Client, user: str) -> dict | None:
    page = await client.page(user, 1)
    return page if page["next_cursor"] else None


async def _has(client: Client, user: str, tweet_id: str) -> bool:
    return tweet_id in await client.ids(user, 100)


async def test_an_older_tweet_that_lands_after_a_refresh_comes_with_the_next_one(client: Client) -> None:
    # The caller's own tweet is in their home at once (read-your-writes); a friend's,
    # posted just before it, waits on the fan-out (the workers frozen here). A refresh
    # meanwhile gets the caller's; the friend's lands below it afterwards and must come
    # with the next refresh, not be skipped for good.
    reader, friend = await client.user(), await client.user()
    await client.follow(reader, friend)
    await client.tweet(reader, "a start")
    token = (await client.page(reader))["prev_cursor"]
    workers = [f"worker-{i}" for i in range(1, int(os.environ.get("TIMELINE_WORKER_COUNT", "1")) + 1)]
    for worker in workers:
        await asyncio.to_thread(stack, "freeze", worker)
    try:
        late = await client.tweet(friend, "on its way")
        own = await client.tweet(reader, "mine, at once")
        page = await _refresh(client, reader, token, 20)
        assert [t["tweet_id"] for t in page["tweets"]] == [own]
        token = page["prev_cursor"]
    finally:
        for worker in workers:
            await asyncio.to_thread(stack, "thaw", worker)
    assert late < own  # time-ordered ids: the friend's is the older
    await eventually(lambda: _has(client, reader, late), timeout=30, what="the friend's tweet delivered")
    page = await _refresh(client, reader, token, 20)
    assert [t["tweet_id"] for t in page["tweets"]] == [late]
    again = await _refresh(client, reader, page["prev_cursor"], 20)
    assert again["tweets"] == [] and again["prev_cursor"] == page["prev_cursor"]
