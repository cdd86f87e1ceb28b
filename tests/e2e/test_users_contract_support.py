"""Helpers for the contract tests of the Users, Follow and Tweets sections of API.md.

Not a test module (it holds no tests); it is named with the `test_users_contract` prefix
only so that it sits with the files it serves. Everything goes through the gateway.
"""

from __future__ import annotations

import re
import time
import uuid
from collections.abc import Iterator
from datetime import UTC, datetime

import httpx
import pytest

from tests.support import GATEWAY, unique_name, wait_for

ISO_MS = re.compile(r"^\d{4}-\d{2}-\d{2}T\d{2}:\d{2}:\d{2}\.\d{3}Z$")
SEED_USERS = {
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11": "alice",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a12": "bob",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a13": "carol",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a14": "dave",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a15": "erin",
}
# Ids that are not UUIDs, in every way a client might get one wrong.
BAD_IDS = [
    "abc",
    "123",
    "not-a-uuid",
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1",  # one hex digit short
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a111",  # one hex digit too many
    "g0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11",  # not hex
    "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11x",
    "00000000",
]


def mishyphenated(user_id: str) -> str:
    """The same 32 hex digits grouped 8-8-8-8: no spelling of a UUID has that shape
    (8-4-4-4-12), so it is "not a UUID". Built from a test's own user, so that a service
    that wrongly accepts it only touches that user."""
    digits = user_id.replace("-", "")
    return "-".join(digits[i : i + 8] for i in range(0, 32, 8))


def unknown_id() -> str:
    """A well-formed UUID that names no user and no tweet."""
    return str(uuid.uuid4())


class Gateway:
    """An httpx client for the gateway that sets X-User-ID and rides out 429s.

    The tests fire requests faster than "normal use"; a 429 is refused at the gateway
    before it reaches a service, so repeating the request after Retry-After is safe even
    for a POST, and keeps the tests about the services' behaviour, not the rate limit.
    """

    def __init__(self, client: httpx.Client) -> None:
        self.client = client

    def request(self, method: str, url: str, *, user: str | None = None, **kwargs: object) -> httpx.Response:
        headers = dict(kwargs.pop("headers", None) or {})  # type: ignore[arg-type]
        if user is not None:
            headers["X-User-ID"] = user
        deadline = time.monotonic() + 30
        while True:
            response = self.client.request(method, url, headers=headers, **kwargs)  # type: ignore[arg-type]
            if response.status_code != 429 or time.monotonic() > deadline:
                return response
            time.sleep(float(response.headers.get("Retry-After", "1")))

    def get(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("GET", url, **kwargs)

    def post(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("POST", url, **kwargs)

    def delete(self, url: str, **kwargs: object) -> httpx.Response:
        return self.request("DELETE", url, **kwargs)


def new_gateway() -> Iterator[Gateway]:
    with httpx.Client(base_url=GATEWAY, timeout=15.0) as client:
        yield Gateway(client)


@pytest.fixture(scope="session")
def gw() -> Iterator[Gateway]:
    yield from new_gateway()


# --- assertions -----------------------------------------------------------------------


def assert_error(response: httpx.Response, status: int) -> dict:
    """The documented status, a JSON content type, and a non-empty `detail` string."""
    assert response.status_code == status, (
        f"{response.request.method} {response.request.url} -> {response.status_code} {response.text[:300]!r}; "
        f"the contract says {status}"
    )
    content_type = response.headers.get("content-type", "")
    assert content_type.split(";")[0].strip() == "application/json", f"error Content-Type is {content_type!r}"
    body = response.json()
    assert isinstance(body, dict), body
    assert isinstance(body.get("detail"), str) and body["detail"].strip(), f"no detail in {body!r}"
    return body


def assert_iso_ms(value: object) -> datetime:
    """`2026-11-25T09:30:00.123Z`, and close to now (the stack runs on this machine)."""
    assert isinstance(value, str) and ISO_MS.fullmatch(value), f"not ISO 8601 UTC with ms and Z: {value!r}"
    moment = datetime.strptime(value, "%Y-%m-%dT%H:%M:%S.%fZ").replace(tzinfo=UTC)
    return moment


def assert_recent(value: object, slack_seconds: float = 120.0) -> datetime:
    moment = assert_iso_ms(value)
    drift = abs((datetime.now(UTC) - moment).total_seconds())
    assert drift < slack_seconds, f"{value} is {drift:.0f}s away from now"
    return moment


def assert_uuid(value: object, version: int | None = None) -> uuid.UUID:
    assert isinstance(value, str), value
    parsed = uuid.UUID(value)
    assert str(parsed) == value, f"id not in canonical lower-case form: {value!r}"
    if version is not None:
        assert parsed.version == version, f"{value} is UUIDv{parsed.version}, expected v{version}"
    return parsed


# --- actions that must succeed ---------------------------------------------------------


def create_user(gw: Gateway, username: str | None = None) -> dict:
    response = gw.post("/api/v1/users", json={"username": username or unique_name("c")})
    assert response.status_code == 201, response.text
    return response.json()


def new_user(gw: Gateway) -> str:
    return create_user(gw)["user_id"]


def profile(gw: Gateway, user_id: str) -> dict:
    response = gw.get(f"/api/v1/users/{user_id}")
    assert response.status_code == 200, response.text
    return response.json()


def tweets_page(gw: Gateway, user_id: str, **params: object) -> dict:
    response = gw.get(f"/api/v1/users/{user_id}/tweets", params=params)
    assert response.status_code == 200, response.text
    return response.json()


def all_tweets(gw: Gateway, user_id: str) -> list[dict]:
    """Every tweet in a user's listing, following the cursor to the end."""
    items, cursor = [], None
    for _ in range(100):
        page = tweets_page(gw, user_id, limit=100, **({"next_cursor": cursor} if cursor else {}))
        items += page["tweets"]
        cursor = page["next_cursor"]
        if cursor is None:
            return items
    raise AssertionError("listing never ended")


def listed_ids(gw: Gateway, user_id: str) -> list[str]:
    return [item["tweet_id"] for item in all_tweets(gw, user_id)]


def post_tweet(gw: Gateway, user_id: str, text: str, key: str | None = None) -> dict:
    body: dict = {"text": text}
    if key is not None:
        body["idempotency_key"] = key
    response = gw.post("/api/v1/tweet", user=user_id, json=body)
    assert response.status_code == 201, response.text
    return response.json()


def follow(gw: Gateway, follower: str, followee: str) -> None:
    response = gw.post("/api/v1/follow", user=follower, json={"follow_user_id": followee})
    assert response.status_code == 201, response.text


def unfollow(gw: Gateway, follower: str, followee: str) -> None:
    response = gw.delete(f"/api/v1/follow/{followee}", user=follower)
    assert response.status_code == 204, response.text


def counts(gw: Gateway, user_id: str) -> tuple[int, int]:
    """(followers_count, following_count)."""
    body = profile(gw, user_id)
    return body["followers_count"], body["following_count"]


def wait_counts(gw: Gateway, user_id: str, followers: int, following: int, timeout: float = 5.0) -> None:
    """Counts may lag a write "never by more than a few seconds": wait that long, no more."""
    seen: list[tuple[int, int]] = []

    def reached() -> bool:
        seen.append(counts(gw, user_id))
        return seen[-1] == (followers, following)

    try:
        wait_for(reached, timeout=timeout, interval=0.2, what="counts")
    except AssertionError:
        raise AssertionError(
            f"counts (followers, following) of {user_id} never became {(followers, following)} "
            f"within {timeout}s; last seen {seen[-1]}"
        ) from None


def timeline_ids(gw: Gateway, user_id: str) -> list[str]:
    response = gw.get("/api/v1/timeline", user=user_id, params={"limit": 100})
    assert response.status_code == 200, response.text
    return [item["tweet_id"] for item in response.json()["tweets"]]
