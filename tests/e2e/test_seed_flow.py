"""The original design's three requests, verbatim, through the gateway."""

from __future__ import annotations

import httpx

from tests.support import wait_for

A11 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"
A13 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13"
A15 = "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15"


def test_seed_curls_follow_tweet_and_read_timeline(api: httpx.Client) -> None:
    follow = api.post("/api/v1/follow", headers={"X-User-ID": A15}, json={"follow_user_id": A13})
    assert follow.status_code == 201, follow.text

    tweet = api.post(
        "/api/v1/tweet",
        headers={"X-User-ID": A11},
        json={"text": "test redis #3", "idempotency_key": "a00ffe35-fc64-45f3-be60-8c824ec0a346"},
    )
    assert tweet.status_code == 201, tweet.text
    body = tweet.json()
    assert set(body) == {"tweet_id", "created_at"}
    assert body["created_at"].endswith("Z") and len(body["created_at"]) == len("2026-11-25T09:30:00.123Z")

    assert api.post("/api/v1/follow", headers={"X-User-ID": A15}, json={"follow_user_id": A11}).status_code == 201

    def timeline_holds_tweet():
        page = api.get("/api/v1/timeline", headers={"X-User-ID": A15}).json()
        return next((item for item in page["tweets"] if item["tweet_id"] == body["tweet_id"]), None)

    item = wait_for(timeline_holds_tweet, timeout=10, what="a15's timeline to hold a11's tweet")
    assert item == {
        "tweet_id": body["tweet_id"],
        "user_id": A11,
        "username": "alice",
        "text": "test redis #3",
        "created_at": body["created_at"],
    }


def test_seed_tweet_retry_returns_the_same_tweet(api: httpx.Client) -> None:
    request = {"text": "test redis #3", "idempotency_key": "a00ffe35-fc64-45f3-be60-8c824ec0a346"}
    first = api.post("/api/v1/tweet", headers={"X-User-ID": A11}, json=request)
    again = api.post("/api/v1/tweet", headers={"X-User-ID": A11}, json=request)
    assert first.status_code == again.status_code == 201
    assert first.json() == again.json()
