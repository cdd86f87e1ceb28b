"""Following, tweeting and reading, as new users would, through the gateway."""

from __future__ import annotations

import httpx

from tests.support import wait_for


def _timeline(api: httpx.Client, user: str, **params: object) -> dict:
    response = api.get("/api/v1/timeline", headers={"X-User-ID": user}, params=params)
    assert response.status_code == 200, response.text
    return response.json()


def _tweet(api: httpx.Client, user: str, text: str) -> str:
    response = api.post("/api/v1/tweet", headers={"X-User-ID": user}, json={"text": text})
    assert response.status_code == 201, response.text
    return response.json()["tweet_id"]


def test_a_follower_sees_new_tweets_newest_first(api: httpx.Client, new_user) -> None:
    author_a, author_b, reader = new_user(), new_user(), new_user()
    for author in (author_a, author_b):
        assert (
            api.post("/api/v1/follow", headers={"X-User-ID": reader}, json={"follow_user_id": author}).status_code
            == 201
        )
    assert _timeline(api, reader)["tweets"] == []  # materializes the reader's timeline

    posted = [_tweet(api, author_a, "one"), _tweet(api, author_b, "two"), _tweet(api, author_a, "three")]
    page = wait_for(lambda: (p := _timeline(api, reader)) and len(p["tweets"]) == 3 and p, what="three tweets")
    assert [t["tweet_id"] for t in page["tweets"]] == posted[::-1]
    assert [t["text"] for t in page["tweets"]] == ["three", "two", "one"]
    assert page["next_cursor"] is None


def test_follow_backfills_and_own_tweets_show(api: httpx.Client, new_user) -> None:
    author, reader = new_user(), new_user()
    old = [_tweet(api, author, f"before follow {i}") for i in range(3)]
    own = _tweet(api, reader, "my own")
    assert api.post("/api/v1/follow", headers={"X-User-ID": reader}, json={"follow_user_id": author}).status_code == 201
    page = wait_for(lambda: (p := _timeline(api, reader)) and len(p["tweets"]) == 4 and p, what="backfilled tweets")
    assert {t["tweet_id"] for t in page["tweets"]} == {*old, own}
    ids = [t["tweet_id"] for t in page["tweets"]]
    assert ids == sorted(ids, reverse=True)


def test_pages_follow_the_cursor_without_repeats(api: httpx.Client, new_user) -> None:
    author, reader = new_user(), new_user()
    assert api.post("/api/v1/follow", headers={"X-User-ID": reader}, json={"follow_user_id": author}).status_code == 201
    posted = [_tweet(api, author, f"tweet {i}") for i in range(7)]
    wait_for(lambda: len(_timeline(api, reader, limit=100)["tweets"]) == 7, what="seven tweets")
    seen, cursor = [], None
    while True:
        params = {"limit": 3, **({"next_cursor": cursor} if cursor else {})}
        page = _timeline(api, reader, **params)
        seen += [t["tweet_id"] for t in page["tweets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
    assert seen == posted[::-1]


def test_unknown_caller_and_bad_header(api: httpx.Client) -> None:
    missing = api.get("/api/v1/timeline")
    assert missing.status_code == 400 and missing.json()["detail"]
    bad = api.get("/api/v1/timeline", headers={"X-User-ID": "not-a-uuid"})
    assert bad.status_code == 400 and bad.json()["detail"]
    unknown = api.get("/api/v1/timeline", headers={"X-User-ID": "00000000-0000-4000-8000-000000000000"})
    assert unknown.status_code == 404 and unknown.json()["detail"]
