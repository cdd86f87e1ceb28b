"""API.md, Follow (and the counts of Users): following and unfollowing through the gateway,
with every kind of bad input, and the effects a user can see (counts, timeline)."""

from __future__ import annotations

import os
import threading
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_users_contract_support import (
    BAD_IDS,
    Gateway,
    assert_error,
    counts,
    follow,
    mishyphenated,
    new_gateway,
    new_user,
    post_tweet,
    timeline_ids,
    unfollow,
    unknown_id,
    wait_counts,
)
from tests.support import wait_for

FOLLOW = "/api/v1/follow"


# --- POST /api/v1/follow: success and counts --------------------------------------------------


def test_follow_is_201_and_moves_both_counts(gw: Gateway) -> None:
    follower, followee = new_user(gw), new_user(gw)
    response = gw.post(FOLLOW, user=follower, json={"follow_user_id": followee})
    assert response.status_code == 201, response.text
    wait_counts(gw, followee, followers=1, following=0)
    wait_counts(gw, follower, followers=0, following=1)


def test_following_again_is_201_and_counts_once(gw: Gateway) -> None:
    follower, followee, later = new_user(gw), new_user(gw), new_user(gw)
    for _ in range(3):
        assert gw.post(FOLLOW, user=follower, json={"follow_user_id": followee}).status_code == 201
    wait_counts(gw, followee, followers=1, following=0)
    # Another follower moves the count to exactly 2: the repeats were not counted.
    follow(gw, later, followee)
    wait_counts(gw, followee, followers=2, following=0)
    wait_counts(gw, follower, followers=0, following=1)


def test_racing_follows_of_the_same_user_count_once(gw: Gateway) -> None:
    follower, followee = new_user(gw), new_user(gw)
    barrier = threading.Barrier(10)

    def race(_: int) -> int:
        gateway = new_gateway()
        client = next(gateway)
        barrier.wait()
        try:
            return client.post(FOLLOW, user=follower, json={"follow_user_id": followee}).status_code
        finally:
            gateway.close()

    with ThreadPoolExecutor(10) as pool:
        assert list(pool.map(race, range(10))) == [201] * 10
    wait_counts(gw, follower, followers=0, following=1)
    wait_counts(gw, followee, followers=1, following=0)


def test_unfollow_is_204_twice_and_counts_return_to_zero(gw: Gateway) -> None:
    follower, followee = new_user(gw), new_user(gw)
    follow(gw, follower, followee)
    wait_counts(gw, followee, followers=1, following=0)
    first = gw.delete(f"{FOLLOW}/{followee}", user=follower)
    assert first.status_code == 204 and first.content == b"", first.text
    again = gw.delete(f"{FOLLOW}/{followee}", user=follower)
    assert again.status_code == 204 and again.content == b"", again.text
    wait_counts(gw, followee, followers=0, following=0)
    wait_counts(gw, follower, followers=0, following=0)
    # Following again after all that counts one, not zero or two.
    follow(gw, follower, followee)
    wait_counts(gw, followee, followers=1, following=0)
    wait_counts(gw, follower, followers=0, following=1)


def test_unfollowing_someone_never_followed_is_204_and_changes_nothing(gw: Gateway) -> None:
    caller, stranger, witness = new_user(gw), new_user(gw), new_user(gw)
    assert gw.delete(f"{FOLLOW}/{stranger}", user=caller).status_code == 204
    assert gw.delete(f"{FOLLOW}/{unknown_id()}", user=caller).status_code == 204
    follow(gw, witness, stranger)  # a real change after the no-ops, to wait on
    wait_counts(gw, stranger, followers=1, following=0)
    wait_counts(gw, caller, followers=0, following=0)


# --- POST /api/v1/follow: errors -------------------------------------------------------------


def test_following_yourself_is_400(gw: Gateway) -> None:
    user = new_user(gw)
    assert_error(gw.post(FOLLOW, user=user, json={"follow_user_id": user}), 400)
    assert_error(gw.post(FOLLOW, user=user, json={"follow_user_id": user.upper()}), 400)
    assert counts(gw, user) == (0, 0)


def test_follow_without_x_user_id_is_400(gw: Gateway) -> None:
    followee = new_user(gw)
    assert_error(gw.post(FOLLOW, json={"follow_user_id": followee}), 400)
    assert_error(gw.post(FOLLOW, headers={"X-User-ID": ""}, json={"follow_user_id": followee}), 400)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_follow_with_a_malformed_x_user_id_is_400(gw: Gateway, bad: str) -> None:
    followee = new_user(gw)
    assert_error(gw.post(FOLLOW, user=bad, json={"follow_user_id": followee}), 400)


def test_follow_with_a_mishyphenated_x_user_id_is_400(gw: Gateway) -> None:
    caller, followee = new_user(gw), new_user(gw)
    assert_error(gw.post(FOLLOW, user=mishyphenated(caller), json={"follow_user_id": followee}), 400)
    assert counts(gw, caller) == (0, 0)


def test_follow_by_an_unknown_caller_is_404(gw: Gateway) -> None:
    followee = new_user(gw)
    assert_error(gw.post(FOLLOW, user=unknown_id(), json={"follow_user_id": followee}), 404)


def test_following_an_unknown_user_is_404(gw: Gateway) -> None:
    caller = new_user(gw)
    assert_error(gw.post(FOLLOW, user=caller, json={"follow_user_id": unknown_id()}), 404)
    assert counts(gw, caller) == (0, 0)


BAD_FOLLOW_BODIES = {
    "missing field": {},
    "misspelt field": {"follow_user": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"},
    "empty string": {"follow_user_id": ""},
    "not a uuid": {"follow_user_id": "bob"},
    "uuid one digit short": {"follow_user_id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a1"},
    "uuid without hyphens": {"follow_user_id": "a0eebc999c0b4ef8bb6d6bb9bd380a11"},  # (msgspec's own took it)
    "uuid in braces": {"follow_user_id": "{a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11}"},
    "username instead of id": {"follow_user_id": "alice"},
    "int": {"follow_user_id": 5},
    "null": {"follow_user_id": None},
    "list": {"follow_user_id": ["a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"]},
    "object": {"follow_user_id": {"id": "a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"}},
}


@pytest.mark.parametrize("body", list(BAD_FOLLOW_BODIES.values()), ids=list(BAD_FOLLOW_BODIES))
def test_follow_with_a_bad_or_missing_follow_user_id_is_400(gw: Gateway, body: dict) -> None:
    caller = new_user(gw)
    assert_error(gw.post(FOLLOW, user=caller, json=body), 400)
    assert counts(gw, caller) == (0, 0)


MALFORMED_FOLLOW_BODIES = {
    "not json": b"follow please",
    "json array": b"[]",
    "json string": b'"a0eebc99-9c0b-4ef8-bb6d-6bb9bd380a11"',
    "json null": b"null",
    "truncated": b'{"follow_user_id": "a0eebc99',
    "empty": b"",
    "invalid utf-8": b'{"follow_user_id": "\xff"}',
}


@pytest.mark.parametrize("body", list(MALFORMED_FOLLOW_BODIES.values()), ids=list(MALFORMED_FOLLOW_BODIES))
def test_follow_with_a_malformed_body_is_400_never_500(gw: Gateway, body: bytes) -> None:
    caller = new_user(gw)
    response = gw.post(FOLLOW, user=caller, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400)


def test_rejected_follows_change_no_counts(gw: Gateway) -> None:
    caller, target, witness, other = new_user(gw), new_user(gw), new_user(gw), new_user(gw)
    rejected = [
        (gw.post(FOLLOW, user=caller, json={"follow_user_id": caller}), 400),
        (gw.post(FOLLOW, user=caller, json={"follow_user_id": unknown_id()}), 404),
        (gw.post(FOLLOW, user=caller, json={"follow_user_id": 7}), 400),
        (gw.post(FOLLOW, user=caller, json={"follow_user_id": [target]}), 400),
        (gw.post(FOLLOW, user=unknown_id(), json={"follow_user_id": target}), 404),
        (gw.post(FOLLOW, json={"follow_user_id": target}), 400),
        (gw.post(FOLLOW, user="not-a-uuid", json={"follow_user_id": target}), 400),
    ]
    for response, status in rejected:
        assert_error(response, status)
    # Real follows after the rejected ones: once they show, nothing else may have.
    follow(gw, witness, target)
    follow(gw, caller, other)
    wait_counts(gw, target, followers=1, following=0)
    wait_counts(gw, other, followers=1, following=0)
    wait_counts(gw, caller, followers=0, following=1)


# --- DELETE /api/v1/follow/{id}: errors ------------------------------------------------------


@pytest.mark.parametrize("bad", BAD_IDS)
def test_unfollow_with_a_bad_id_is_400(gw: Gateway, bad: str) -> None:
    caller = new_user(gw)
    assert_error(gw.delete(f"{FOLLOW}/{bad}", user=caller), 400)


def test_unfollow_with_a_mishyphenated_id_is_400(gw: Gateway) -> None:
    caller, followee = new_user(gw), new_user(gw)
    follow(gw, caller, followee)
    assert_error(gw.delete(f"{FOLLOW}/{mishyphenated(followee)}", user=caller), 400)
    wait_counts(gw, caller, followers=0, following=1, timeout=3)


def test_unfollow_by_an_unknown_caller_is_404(gw: Gateway) -> None:
    followee = new_user(gw)
    assert_error(gw.delete(f"{FOLLOW}/{followee}", user=unknown_id()), 404)


def test_unfollow_without_or_with_a_bad_x_user_id_is_400(gw: Gateway) -> None:
    followee = new_user(gw)
    assert_error(gw.delete(f"{FOLLOW}/{followee}"), 400)
    assert_error(gw.delete(f"{FOLLOW}/{followee}", headers={"X-User-ID": ""}), 400)
    for bad in BAD_IDS:
        assert_error(gw.delete(f"{FOLLOW}/{followee}", user=bad), 400)


def test_rejected_unfollows_keep_the_follow(gw: Gateway) -> None:
    follower, followee = new_user(gw), new_user(gw)
    follow(gw, follower, followee)
    wait_counts(gw, followee, followers=1, following=0)
    assert_error(gw.delete(f"{FOLLOW}/{followee}"), 400)
    assert_error(gw.delete(f"{FOLLOW}/{followee}", user="nope"), 400)
    assert_error(gw.delete(f"{FOLLOW}/{followee}x", user=follower), 400)
    assert_error(gw.delete(f"{FOLLOW}/{followee}", user=unknown_id()), 404)
    # Still following: a second follow of someone else moves only following to 2.
    other = new_user(gw)
    follow(gw, follower, other)
    wait_counts(gw, other, followers=1, following=0)
    wait_counts(gw, follower, followers=0, following=2)
    assert counts(gw, followee) == (1, 0)


# --- Follow rules: backfill, and unfollow empties and stops ------------------------------------


def test_follow_backfills_and_unfollow_removes_and_stops_new_tweets(gw: Gateway) -> None:
    author, reader, witness = new_user(gw), new_user(gw), new_user(gw)
    old = [post_tweet(gw, author, f"old {i}")["tweet_id"] for i in range(3)]
    own = post_tweet(gw, reader, "the reader's own")["tweet_id"]
    timeline_ids(gw, reader), timeline_ids(gw, witness)  # homes exist before the follows

    follow(gw, reader, author)
    follow(gw, witness, author)
    wait_for(lambda: set(old) | {own} <= set(timeline_ids(gw, reader)), what="backfill into the reader's timeline")

    unfollow(gw, reader, author)
    wait_for(
        lambda: not set(old) & set(timeline_ids(gw, reader)), what="the author's tweets to leave the reader's timeline"
    )

    new = post_tweet(gw, author, "after the unfollow")["tweet_id"]
    wait_for(lambda: new in timeline_ids(gw, witness), what="the new tweet to reach a remaining follower")
    home = timeline_ids(gw, reader)
    assert new not in home and not set(old) & set(home)
    assert own in home


# --- the following limit (USERS_MAX_FOLLOWING; make test sets it low) --------------------------


def test_following_past_the_limit_is_409_and_following_again_or_after_an_unfollow_is_not(gw: Gateway) -> None:
    limit = int(os.environ.get("USERS_MAX_FOLLOWING", "5000"))
    if limit > 60:
        pytest.skip("needs make test's low USERS_MAX_FOLLOWING")
    follower = new_user(gw)
    followees = [new_user(gw) for _ in range(limit + 1)]
    for followee in followees[:limit]:
        follow(gw, follower, followee)
    refused = gw.post(FOLLOW, user=follower, json={"follow_user_id": followees[limit]})
    assert_error(refused, 409)
    assert "limit" in refused.json()["detail"]
    assert counts(gw, follower)[1] == limit  # nothing changed
    follow(gw, follower, followees[0])  # following again someone followed: still 201
    unfollow(gw, follower, followees[0])
    follow(gw, follower, followees[limit])  # room again after an unfollow
    wait_counts(gw, follower, followers=0, following=limit)
