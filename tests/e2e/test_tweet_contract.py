"""API.md, Tweets: publishing (text rules, idempotency) and deleting, through the gateway,
with every kind of bad input - and what a user then sees in the author's listing."""

from __future__ import annotations

import threading
import unicodedata
import uuid
from concurrent.futures import ThreadPoolExecutor
from datetime import timedelta

import pytest

from shared_schemas.ids import uuid7_time
from tests.e2e.test_users_contract_support import (
    BAD_IDS,
    Gateway,
    all_tweets,
    assert_error,
    assert_recent,
    assert_uuid,
    create_user,
    follow,
    listed_ids,
    mishyphenated,
    new_gateway,
    new_user,
    post_tweet,
    timeline_ids,
    unknown_id,
)
from tests.support import wait_for

TWEET = "/api/v1/tweet"


# --- POST /api/v1/tweet: success ---------------------------------------------------------


def test_a_tweet_is_201_with_a_time_ordered_id_and_a_millisecond_time(gw: Gateway) -> None:
    author = create_user(gw)
    response = gw.post(TWEET, user=author["user_id"], json={"text": "hello world"})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"tweet_id", "created_at"}
    tweet_id = assert_uuid(body["tweet_id"], version=7)
    created = assert_recent(body["created_at"])
    assert abs(uuid7_time(tweet_id) - created) < timedelta(seconds=1)
    assert all_tweets(gw, author["user_id"]) == [
        {
            "tweet_id": body["tweet_id"],
            "user_id": author["user_id"],
            "username": author["username"],
            "text": "hello world",
            "created_at": body["created_at"],
        }
    ]


def test_tweet_ids_grow_in_publishing_order(gw: Gateway) -> None:
    author = new_user(gw)
    ids = [post_tweet(gw, author, f"in order {i}")["tweet_id"] for i in range(8)]
    assert ids == sorted(ids) and len(set(ids)) == 8
    assert listed_ids(gw, author) == ids[::-1]


VALID_TEXTS = {
    "1 char": "x",
    "280 ascii": "a" * 280,
    "280 precomposed é": "\u00e9" * 280,
    "280 decomposed é": "e\u0301" * 280,  # 560 code points as sent, 280 after NFC
    "280 emoji": "\U0001f600" * 280,  # 560 UTF-16 units, 1120 UTF-8 bytes
    "280 cjk": "語" * 280,
    "140 flags": "\U0001f1eb\U0001f1f7" * 140,  # 280 code points
    "279 + surrounding spaces": " " + "b" * 278 + " ",
    "zero width joiner family": "\U0001f468\u200d\U0001f469\u200d\U0001f467",
    "markup and quotes": "<b>\"hi\"</b> & 'bye' \\ \u2028 %s {0}",
}


@pytest.mark.parametrize("text", list(VALID_TEXTS.values()), ids=list(VALID_TEXTS))
def test_valid_texts_are_published_and_listed_in_nfc(gw: Gateway, text: str) -> None:
    author = new_user(gw)
    published = post_tweet(gw, author, text)
    [item] = all_tweets(gw, author)
    assert item["tweet_id"] == published["tweet_id"]
    assert item["text"] == unicodedata.normalize("NFC", text)


BAD_TEXTS = {
    "empty": "",
    "281 ascii": "a" * 281,
    "281 decomposed é": "e\u0301" * 281,
    "281 emoji": "\U0001f600" * 281,
    "281 cjk": "語" * 281,
    "one space": " ",
    "spaces tabs newlines": " \t\n\r  \n",
    "ideographic space": "\u3000",
    "no-break and em spaces": "\u00a0\u2003\u2009",
    "line separators": "\u2028\u2029\u0085",
    "281 with whitespace": " " * 281,
}


@pytest.mark.parametrize("text", list(BAD_TEXTS.values()), ids=list(BAD_TEXTS))
def test_bad_texts_are_400_and_publish_nothing(gw: Gateway, text: str) -> None:
    author = new_user(gw)
    assert_error(gw.post(TWEET, user=author, json={"text": text}), 400)
    assert_error(gw.post(TWEET, user=author, json={"text": text, "idempotency_key": str(uuid.uuid4())}), 400)
    assert all_tweets(gw, author) == []


NON_STRING_TEXTS = {"int": 5, "float": 2.5, "true": True, "null": None, "list": ["hi"], "object": {"text": "hi"}}


@pytest.mark.parametrize("text", list(NON_STRING_TEXTS.values()), ids=list(NON_STRING_TEXTS))
def test_non_string_text_is_400_and_publishes_nothing(gw: Gateway, text: object) -> None:
    author = new_user(gw)
    assert_error(gw.post(TWEET, user=author, json={"text": text}), 400)
    assert all_tweets(gw, author) == []


MALFORMED_TWEET_BODIES = {
    "missing text": b"{}",
    "key only": b'{"idempotency_key": "a00ffe35-fc64-45f3-be60-8c824ec0a346"}',
    "not json": b"hello",
    "json array": b'["hello"]',
    "json string": b'"hello"',
    "json number": b"1",
    "json null": b"null",
    "truncated": b'{"text": "hel',
    "empty body": b"",
    "invalid utf-8 in text": b'{"text": "caf\xe9"}',
    "invalid utf-8 continuation": b'{"text": "\xc3\x28"}',
    "lone surrogate escape": b'{"text": "\\udc00"}',
}


@pytest.mark.parametrize("body", list(MALFORMED_TWEET_BODIES.values()), ids=list(MALFORMED_TWEET_BODIES))
def test_malformed_tweet_bodies_are_400_never_500(gw: Gateway, body: bytes) -> None:
    author = new_user(gw)
    response = gw.post(TWEET, user=author, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400)
    assert all_tweets(gw, author) == []


def test_a_text_with_a_nul_character_is_never_a_500(gw: Gateway) -> None:
    """ "a\\u0000b" is valid JSON and a 3-code-point string. The contract allows either
    publishing it as is or refusing it as bad text (400) - never a 500."""
    author = new_user(gw)
    response = gw.post(TWEET, user=author, json={"text": "a\x00b"})
    if response.status_code == 201:
        assert [t["text"] for t in all_tweets(gw, author)] == ["a\x00b"]
    else:
        assert_error(response, 400)
        assert all_tweets(gw, author) == []


# --- POST /api/v1/tweet: idempotency --------------------------------------------------------


def test_a_retry_with_the_same_key_and_text_returns_the_same_tweet(gw: Gateway) -> None:
    author, key = new_user(gw), str(uuid.uuid4())
    first = gw.post(TWEET, user=author, json={"text": "only once", "idempotency_key": key})
    assert first.status_code == 201, first.text
    for retry_key in (key, key, key.upper()):
        again = gw.post(TWEET, user=author, json={"text": "only once", "idempotency_key": retry_key})
        assert again.status_code == 201, again.text
        assert again.json() == first.json()
    assert [(t["tweet_id"], t["text"]) for t in all_tweets(gw, author)] == [(first.json()["tweet_id"], "only once")]


def test_a_retry_with_the_same_text_in_another_normal_form_is_the_same_tweet(gw: Gateway) -> None:
    author, key = new_user(gw), str(uuid.uuid4())
    first = post_tweet(gw, author, "caf\u00e9", key)
    assert post_tweet(gw, author, "cafe\u0301", key) == first
    assert listed_ids(gw, author) == [first["tweet_id"]]


def test_the_same_key_with_other_text_is_409_and_keeps_the_original(gw: Gateway) -> None:
    author, key = new_user(gw), str(uuid.uuid4())
    first = post_tweet(gw, author, "the original", key)
    assert_error(gw.post(TWEET, user=author, json={"text": "something else", "idempotency_key": key}), 409)
    assert_error(gw.post(TWEET, user=author, json={"text": "the original ", "idempotency_key": key}), 409)
    # The original stands, and its own retry still answers with it.
    assert post_tweet(gw, author, "the original", key) == first
    assert [(t["tweet_id"], t["text"]) for t in all_tweets(gw, author)] == [(first["tweet_id"], "the original")]


def test_two_authors_may_use_the_same_key(gw: Gateway) -> None:
    alice, bob, key = new_user(gw), new_user(gw), str(uuid.uuid4())
    a = post_tweet(gw, alice, "alice's words", key)
    b = post_tweet(gw, bob, "bob's words", key)
    assert a["tweet_id"] != b["tweet_id"]
    assert [t["text"] for t in all_tweets(gw, alice)] == ["alice's words"]
    assert [t["text"] for t in all_tweets(gw, bob)] == ["bob's words"]


def test_tweets_without_a_key_are_never_deduplicated(gw: Gateway) -> None:
    author = new_user(gw)
    first, second = post_tweet(gw, author, "same words"), post_tweet(gw, author, "same words")
    assert first["tweet_id"] != second["tweet_id"]
    assert listed_ids(gw, author) == [second["tweet_id"], first["tweet_id"]]


def test_twenty_racing_retries_make_one_tweet(gw: Gateway) -> None:
    author, key = new_user(gw), str(uuid.uuid4())
    barrier = threading.Barrier(20)

    def retry(_: int):
        own = new_gateway()  # one connection per racer, released together
        client = next(own)
        barrier.wait()
        try:
            return client.post(TWEET, user=author, json={"text": "raced", "idempotency_key": key})
        finally:
            own.close()

    with ThreadPoolExecutor(20) as pool:
        responses = list(pool.map(retry, range(20)))
    assert [r.status_code for r in responses] == [201] * 20, [(r.status_code, r.text) for r in responses]
    assert len({r.text for r in responses}) == 1 and len({tuple(r.json().items()) for r in responses}) == 1
    [item] = all_tweets(gw, author)
    assert item["tweet_id"] == responses[0].json()["tweet_id"] and item["text"] == "raced"
    assert item["created_at"] == responses[0].json()["created_at"]


BAD_KEYS = {
    "word": "abc",
    "empty": "",
    "uuid one digit short": "a00ffe35-fc64-45f3-be60-8c824ec0a34",
    "uuid with suffix": "a00ffe35-fc64-45f3-be60-8c824ec0a346x",
    "uuid without hyphens": "a00ffe35fc6445f3be608c824ec0a346",  # (msgspec's own took it)
    "not hex": "z00ffe35-fc64-45f3-be60-8c824ec0a346",
    "int": 12345,
    "true": True,
    "list": ["a00ffe35-fc64-45f3-be60-8c824ec0a346"],
    "object": {"key": "a00ffe35-fc64-45f3-be60-8c824ec0a346"},
}


@pytest.mark.parametrize("key", list(BAD_KEYS.values()), ids=list(BAD_KEYS))
def test_an_idempotency_key_that_is_not_a_uuid_is_400(gw: Gateway, key: object) -> None:
    author = new_user(gw)
    assert_error(gw.post(TWEET, user=author, json={"text": "keyed", "idempotency_key": key}), 400)
    assert all_tweets(gw, author) == []


# --- POST /api/v1/tweet: the caller -----------------------------------------------------------


def test_a_tweet_by_an_unknown_author_is_404(gw: Gateway) -> None:
    assert_error(gw.post(TWEET, user=unknown_id(), json={"text": "who am I"}), 404)
    assert_error(
        gw.post(TWEET, user=unknown_id(), json={"text": "who am I", "idempotency_key": str(uuid.uuid4())}), 404
    )


def test_a_tweet_without_x_user_id_is_400(gw: Gateway) -> None:
    assert_error(gw.post(TWEET, json={"text": "anonymous"}), 400)
    assert_error(gw.post(TWEET, headers={"X-User-ID": ""}, json={"text": "anonymous"}), 400)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_tweet_with_a_malformed_x_user_id_is_400(gw: Gateway, bad: str) -> None:
    assert_error(gw.post(TWEET, user=bad, json={"text": "bad header"}), 400)


def test_a_tweet_with_a_mishyphenated_x_user_id_is_400(gw: Gateway) -> None:
    author = new_user(gw)
    assert_error(gw.post(TWEET, user=mishyphenated(author), json={"text": "bad header"}), 400)
    assert all_tweets(gw, author) == []


# --- DELETE /api/v1/tweet/{id} -------------------------------------------------------------------


def test_delete_is_204_then_404_and_the_tweet_leaves_the_listing(gw: Gateway) -> None:
    author = new_user(gw)
    keep = post_tweet(gw, author, "keep me")["tweet_id"]
    doomed = post_tweet(gw, author, "delete me")["tweet_id"]
    response = gw.delete(f"{TWEET}/{doomed}", user=author)
    assert response.status_code == 204 and response.content == b"", response.text
    assert listed_ids(gw, author) == [keep]
    assert_error(gw.delete(f"{TWEET}/{doomed}", user=author), 404)
    assert listed_ids(gw, author) == [keep]


def test_deleting_someone_elses_tweet_is_404_and_it_stays(gw: Gateway) -> None:
    author, other = new_user(gw), new_user(gw)
    tweet = post_tweet(gw, author, "mine")["tweet_id"]
    post_tweet(gw, other, "the other's own")
    assert_error(gw.delete(f"{TWEET}/{tweet}", user=other), 404)
    assert listed_ids(gw, author) == [tweet]
    assert gw.delete(f"{TWEET}/{tweet}", user=author).status_code == 204  # the author still can


def test_deleting_an_unknown_tweet_is_404(gw: Gateway) -> None:
    author = new_user(gw)
    assert_error(gw.delete(f"{TWEET}/{unknown_id()}", user=author), 404)
    assert_error(gw.delete(f"{TWEET}/{author}", user=author), 404)  # a user id is no tweet id


@pytest.mark.parametrize("bad", BAD_IDS)
def test_deleting_with_a_malformed_tweet_id_is_404(gw: Gateway, bad: str) -> None:
    # API.md gives this route 404 alone: a string that is no UUID names no tweet.
    author = new_user(gw)
    assert_error(gw.delete(f"{TWEET}/{bad}", user=author), 404)
    assert_error(gw.delete(f"{TWEET}/{bad}", user="not-a-uuid"), 400)  # the caller is checked first


def test_deleting_with_a_mishyphenated_tweet_id_is_404_and_deletes_nothing(gw: Gateway) -> None:
    author = new_user(gw)
    tweet = post_tweet(gw, author, "still here")["tweet_id"]
    assert_error(gw.delete(f"{TWEET}/{mishyphenated(tweet)}", user=author), 404)
    assert listed_ids(gw, author) == [tweet]


def test_rejected_deletes_leave_the_tweet(gw: Gateway) -> None:
    author = new_user(gw)
    tweet = post_tweet(gw, author, "survivor")["tweet_id"]
    assert_error(gw.delete(f"{TWEET}/{tweet}"), 400)
    assert_error(gw.delete(f"{TWEET}/{tweet}", headers={"X-User-ID": ""}), 400)
    assert_error(gw.delete(f"{TWEET}/{tweet}", user="not-a-uuid"), 400)
    assert_error(gw.delete(f"{TWEET}/{tweet}", user=unknown_id()), 404)
    assert_error(gw.delete(f"{TWEET}/{tweet}x", user=author), 404)
    assert listed_ids(gw, author) == [tweet]


def test_a_retry_of_a_deleted_tweet_does_not_bring_it_back(gw: Gateway) -> None:
    author, key = new_user(gw), str(uuid.uuid4())
    first = post_tweet(gw, author, "regret", key)
    assert gw.delete(f"{TWEET}/{first['tweet_id']}", user=author).status_code == 204
    retry = gw.post(TWEET, user=author, json={"text": "regret", "idempotency_key": key})
    assert retry.status_code == 201 and retry.json() == first, retry.text
    assert all_tweets(gw, author) == []


def test_a_deleted_tweet_leaves_the_followers_timeline(gw: Gateway) -> None:
    author, reader = new_user(gw), new_user(gw)
    timeline_ids(gw, reader)
    follow(gw, reader, author)
    keep = post_tweet(gw, author, "stays")["tweet_id"]
    doomed = post_tweet(gw, author, "goes")["tweet_id"]
    wait_for(lambda: {keep, doomed} <= set(timeline_ids(gw, reader)), what="both tweets in the follower's timeline")
    assert gw.delete(f"{TWEET}/{doomed}", user=author).status_code == 204
    wait_for(lambda: doomed not in timeline_ids(gw, reader), what="the deleted tweet to leave the timeline")
    assert keep in timeline_ids(gw, reader)
