"""API.md, Conventions and Users: creating users, profiles and a user's tweet listing,
through the gateway, as a new client would try them - including every kind of bad input."""

from __future__ import annotations

import base64
import json
import os
import threading
import uuid
from concurrent.futures import ThreadPoolExecutor

import pytest

from tests.e2e.test_users_contract_support import (
    BAD_IDS,
    SEED_USERS,
    Gateway,
    all_tweets,
    assert_error,
    assert_iso_ms,
    assert_recent,
    assert_uuid,
    create_user,
    mishyphenated,
    new_gateway,
    new_user,
    post_tweet,
    profile,
    tweets_page,
    unknown_id,
)
from tests.support import unique_name

USERS = "/api/v1/users"


# --- POST /api/v1/users: success ---------------------------------------------------------


def test_create_user_answers_201_with_id_name_and_millisecond_utc_time(gw: Gateway) -> None:
    name = unique_name("Cr")
    response = gw.post(USERS, json={"username": name})
    assert response.status_code == 201, response.text
    assert response.headers["content-type"].startswith("application/json")
    body = response.json()
    assert set(body) == {"user_id", "username", "created_at"}
    assert_uuid(body["user_id"])
    assert body["username"] == name  # case kept as typed
    assert_recent(body["created_at"])


@pytest.mark.parametrize("shape", ["15 chars", "digits and underscore", "upper case"])
def test_usernames_at_the_edges_of_the_rule_are_accepted(gw: Gateway, shape: str) -> None:
    tail = uuid.uuid4().hex
    name = {
        "15 chars": ("m" + tail)[:15],
        "digits and underscore": "_" + str(int(tail[:12], 16))[:13] + "_",
        "upper case": "UP_" + tail[:12].upper(),
    }[shape]
    assert len(name) <= 15
    response = gw.post(USERS, json={"username": name})
    assert response.status_code == 201, response.text
    assert response.json()["username"] == name


def test_a_one_character_username_is_valid(gw: Gateway) -> None:
    # Only 63 one-character names exist, so an earlier run may hold this one: 409 is
    # then the right answer, but never 400.
    name = "abcdefghijklmnopqrstuvwxyzABCDEFGHIJKLMNOPQRSTUVWXYZ0123456789_"[uuid.uuid4().int % 63]
    response = gw.post(USERS, json={"username": name})
    if response.status_code == 201:
        assert response.json()["username"] == name
    else:
        assert_error(response, 409)


# --- POST /api/v1/users: bad usernames ----------------------------------------------------

BAD_USERNAMES = {
    "empty": "",
    "16 chars": "a" * 16,
    "16 chars mixed": "Abc_0123456789xy",
    "inner space": "has space",
    "leading space": " lead",
    "trailing space": "trail ",
    "tab": "tab\there",
    "trailing newline": "newline\n",
    "only spaces": "   ",
    "accented letter": "café",
    "cyrillic": "алиса",
    "cjk": "名前",
    "fullwidth latin": "ａｌｉｃｅ",
    "arabic-indic digits": "١٢٣",
    "superscript digit": "abc²",
    "kelvin sign": "\u212aelvin",
    "emoji": "bob😀",
    "hyphen": "bob-smith",
    "dot": "bob.smith",
    "at sign": "@bob",
    "exclamation": "bob!",
    "quote": "bob'",
    "slash": "a/b",
    "sql": "x';drop--",
    "nul": "a\x00b",
    "zero width space": "bob\u200b",
}


@pytest.mark.parametrize("name", list(BAD_USERNAMES.values()), ids=list(BAD_USERNAMES))
def test_bad_usernames_are_400(gw: Gateway, name: str) -> None:
    assert_error(gw.post(USERS, json={"username": name}), 400)


NON_STRING_USERNAMES = {
    "int": 5,
    "float": 1.5,
    "true": True,
    "null": None,
    "list": ["alice"],
    "object": {"name": "x"},
}


@pytest.mark.parametrize("value", list(NON_STRING_USERNAMES.values()), ids=list(NON_STRING_USERNAMES))
def test_non_string_usernames_are_400(gw: Gateway, value: object) -> None:
    assert_error(gw.post(USERS, json={"username": value}), 400)


@pytest.mark.parametrize(
    "body", [{}, {"user_name": "x"}, {"Username": "x"}], ids=["empty object", "misspelt", "wrong case key"]
)
def test_a_missing_username_field_is_400(gw: Gateway, body: dict) -> None:
    assert_error(gw.post(USERS, json=body), 400)


# --- POST /api/v1/users: malformed bodies --------------------------------------------------

MALFORMED_BODIES = {
    "not json": b"hello",
    "json array": b'["alice"]',
    "json array of object": b'[{"username": "alice_x"}]',
    "json string": b'"alice"',
    "json number": b"42",
    "json null": b"null",
    "json true": b"true",
    "invalid utf-8 in string": b'{"username": "\xff\xfe"}',
    "invalid utf-8 whole body": b"\xff\xfe\xfd",
    "latin-1 encoded": '{"username": "café"}'.encode("latin-1"),
    "truncated": b'{"username": "ab',
    "truncated after colon": b'{"username":',
    "empty body": b"",
    "whitespace body": b"   ",
    "trailing garbage": b'{"username": "x"} x',
    "single quotes": b"{'username': 'x'}",
    "lone surrogate escape": b'{"username": "\\ud800"}',
    "form encoded": b"username=formuser",
}


@pytest.mark.parametrize("body", list(MALFORMED_BODIES.values()), ids=list(MALFORMED_BODIES))
def test_malformed_bodies_are_400_never_500(gw: Gateway, body: bytes) -> None:
    response = gw.post(USERS, content=body, headers={"Content-Type": "application/json"})
    assert_error(response, 400)


@pytest.mark.parametrize(
    "content_type",
    ["application/x-www-form-urlencoded", "multipart/form-data; boundary=x", "text/plain"],
)
def test_form_bodies_under_other_content_types_are_400(gw: Gateway, content_type: str) -> None:
    name = unique_name("fm")
    body = (
        f'--x\r\nContent-Disposition: form-data; name="username"\r\n\r\n{name}\r\n--x--\r\n'
        if content_type.startswith("multipart")
        else f"username={name}"
    )
    assert_error(gw.post(USERS, content=body.encode(), headers={"Content-Type": content_type}), 400)
    # ...and the rejected request did not take the name.
    assert create_user(gw, name)["username"] == name


def test_a_json_body_is_read_as_json_whatever_its_content_type(gw: Gateway) -> None:
    """API.md is silent on Content-Type. `curl -d` labels a body form-encoded unless told
    otherwise, so the body is read as JSON whatever the header says
    (docs/decisions/0006-http-details.md); what matters is that it *is* valid JSON."""
    name = unique_name("ct")
    response = gw.post(USERS, content=json.dumps({"username": name}).encode(), headers={"Content-Type": "text/plain"})
    assert response.status_code == 201, response.text
    assert profile(gw, response.json()["user_id"])["username"] == name
    assert_error(
        gw.post(
            USERS, content=b"username=" + name.encode(), headers={"Content-Type": "application/x-www-form-urlencoded"}
        ),
        400,
    )


def test_rejected_creates_do_not_take_the_name(gw: Gateway) -> None:
    name = unique_name("rj")
    for attempt in ([{"username": name}], {"username": [name]}, {"username": name + " "}, {"username": name + "!"}):
        assert_error(gw.post(USERS, json=attempt), 400)
    assert create_user(gw, name)["username"] == name


# --- POST /api/v1/users: 409 taken --------------------------------------------------------


def test_usernames_are_unique_without_regard_to_case(gw: Gateway) -> None:
    stem = uuid.uuid4().hex[:10]
    original = create_user(gw, f"Al_{stem}")
    for variant in (f"al_{stem}", f"AL_{stem}", f"aL_{stem}", f"Al_{stem}"):
        assert_error(gw.post(USERS, json={"username": variant}), 409)
    # The holder of the name is untouched.
    again = profile(gw, original["user_id"])
    assert again["username"] == f"Al_{stem}"
    assert again["created_at"] == original["created_at"]


@pytest.mark.parametrize("name", ["ALICE", "Bob", "carol", "DaVe", "erin"])
def test_the_seed_users_names_are_taken(gw: Gateway, name: str) -> None:
    assert_error(gw.post(USERS, json={"username": name}), 409)


def test_racing_creates_of_one_name_in_different_cases_make_one_user() -> None:
    stem = uuid.uuid4().hex[:8]
    variants = [f"Race_{stem}", f"race_{stem}", f"RACE_{stem}", f"rAcE_{stem}", f"RaCe_{stem}", f"racE_{stem}"]
    barrier = threading.Barrier(len(variants))

    def create(name: str):
        gateway = new_gateway()
        client = next(gateway)
        barrier.wait()
        try:
            return client.post(USERS, json={"username": name})
        finally:
            gateway.close()

    with ThreadPoolExecutor(len(variants)) as pool:
        responses = list(pool.map(create, variants))
    statuses = sorted(r.status_code for r in responses)
    assert statuses == [201] + [409] * (len(variants) - 1), [(r.status_code, r.text) for r in responses]
    for response in responses:
        if response.status_code == 409:
            assert_error(response, 409)


# --- GET /api/v1/users/{id} ---------------------------------------------------------------


def test_a_new_users_profile_has_zero_counts(gw: Gateway) -> None:
    created = create_user(gw)
    response = gw.get(f"{USERS}/{created['user_id']}")
    assert response.status_code == 200, response.text
    body = response.json()
    assert body == {**created, "followers_count": 0, "following_count": 0}


def test_the_five_seed_users_always_exist(gw: Gateway) -> None:
    for user_id, name in SEED_USERS.items():
        body = profile(gw, user_id)
        assert body["user_id"] == user_id and body["username"] == name
        assert_iso_ms(body["created_at"])
        assert isinstance(body["followers_count"], int) and body["followers_count"] >= 0
        assert isinstance(body["following_count"], int) and body["following_count"] >= 0


@pytest.mark.parametrize("bad", BAD_IDS)
def test_a_profile_with_a_bad_id_is_400(gw: Gateway, bad: str) -> None:
    assert_error(gw.get(f"{USERS}/{bad}"), 400)


def test_a_profile_with_a_mishyphenated_id_is_400(gw: Gateway) -> None:
    """An id grouped 8-8-8-8 is no spelling of a UUID (8-4-4-4-12)."""
    assert_error(gw.get(f"{USERS}/{mishyphenated(new_user(gw))}"), 400)


def test_an_unknown_profile_is_404(gw: Gateway) -> None:
    assert_error(gw.get(f"{USERS}/{unknown_id()}"), 404)


# --- GET /api/v1/users/{id}/tweets ----------------------------------------------------------


@pytest.fixture(scope="module")
def author_with_23_tweets(gw: Gateway) -> tuple[str, list[str]]:
    """A user with 23 tweets, oldest first (shared by read-only listing tests)."""
    author = new_user(gw)
    return author, [post_tweet(gw, author, f"listing {i}")["tweet_id"] for i in range(23)]


def test_a_new_user_has_an_empty_listing(gw: Gateway) -> None:
    user = new_user(gw)
    assert tweets_page(gw, user) == {"tweets": [], "next_cursor": None}


def test_the_listing_is_newest_first_with_full_items(gw: Gateway) -> None:
    created = create_user(gw)
    author = created["user_id"]
    posted = [post_tweet(gw, author, f"number {i}") for i in range(4)]
    page = tweets_page(gw, author)
    assert page["next_cursor"] is None
    assert page["tweets"] == [
        {
            "tweet_id": p["tweet_id"],
            "user_id": author,
            "username": created["username"],
            "text": f"number {i}",
            "created_at": p["created_at"],
        }
        for i, p in reversed(list(enumerate(posted)))
    ]


def test_the_default_page_is_20(gw: Gateway, author_with_23_tweets) -> None:
    author, posted = author_with_23_tweets
    page = tweets_page(gw, author)
    assert [t["tweet_id"] for t in page["tweets"]] == posted[::-1][:20]
    assert isinstance(page["next_cursor"], str) and page["next_cursor"]


@pytest.mark.parametrize("limit", [1, 7, 10, 22, 23, 100])
def test_paging_visits_every_tweet_once_newest_first(gw: Gateway, author_with_23_tweets, limit: int) -> None:
    author, posted = author_with_23_tweets
    seen, cursor, pages = [], None, 0
    while True:
        page = tweets_page(gw, author, limit=limit, **({"next_cursor": cursor} if cursor else {}))
        pages += 1
        assert 0 < len(page["tweets"]) <= limit, page
        seen += [t["tweet_id"] for t in page["tweets"]]
        cursor = page["next_cursor"]
        if cursor is None:
            break
        assert pages < 30, "the cursor never ends"
    assert seen == posted[::-1]
    assert pages == -(-len(posted) // limit)  # no empty last page


def test_pages_stay_stable_while_tweets_arrive_and_leave(gw: Gateway) -> None:
    author = new_user(gw)
    posted = [post_tweet(gw, author, f"stable {i}")["tweet_id"] for i in range(9)]
    first = tweets_page(gw, author, limit=4)
    assert [t["tweet_id"] for t in first["tweets"]] == posted[::-1][:4]
    newer = [post_tweet(gw, author, f"arrived {i}")["tweet_id"] for i in range(3)]
    gone = posted[2]
    assert gw.delete(f"/api/v1/tweet/{gone}", user=author).status_code == 204
    seen, cursor = [t["tweet_id"] for t in first["tweets"]], first["next_cursor"]
    while cursor:
        page = tweets_page(gw, author, limit=4, next_cursor=cursor)
        seen += [t["tweet_id"] for t in page["tweets"]]
        cursor = page["next_cursor"]
    assert seen == [t for t in posted[::-1] if t != gone]
    assert not set(newer) & set(seen)
    # A fresh walk shows the new tweets first.
    assert [t["tweet_id"] for t in all_tweets(gw, author)] == newer[::-1] + [t for t in posted[::-1] if t != gone]


BAD_LIMITS = ["0", "101", "abc", "-1", "", "1.5", " 5", "+5", "1e1", "0x10", "99999999999999999999", "true"]


@pytest.mark.parametrize("limit", BAD_LIMITS)
def test_a_bad_limit_is_400(gw: Gateway, author_with_23_tweets, limit: str) -> None:
    author, _ = author_with_23_tweets
    assert_error(gw.get(f"{USERS}/{author}/tweets", params={"limit": limit}), 400)


@pytest.mark.parametrize("limit", ["٥", "５", "²"], ids=["arabic-indic five", "fullwidth five", "superscript two"])
def test_a_limit_in_non_ascii_digits_is_400(gw: Gateway, author_with_23_tweets, limit: str) -> None:
    """`limit` is an integer 1..100 in a query string: ASCII digits, nothing else."""
    author, _ = author_with_23_tweets
    assert_error(gw.get(f"{USERS}/{author}/tweets", params={"limit": limit}), 400)


def _issued_cursor(gw: Gateway, author: str) -> str:
    cursor = tweets_page(gw, author, limit=5)["next_cursor"]
    assert isinstance(cursor, str) and cursor
    return cursor


def _forged_cursors(real: str) -> dict[str, str]:
    flipped_last = real[:-1] + ("A" if real[-1] != "A" else "B")
    return {
        "garbage": "garbage",
        "symbols": "%%%!!",
        "non ascii": "éé" * 8,
        "uuid": str(uuid.uuid4()),
        "random bytes, right length": base64.urlsafe_b64encode(os.urandom(24)).rstrip(b"=").decode(),
        "last char changed": flipped_last,
        "truncated": real[:-4],
        "extended": real + "AAAA",
        "doubled": real + real,
    }


@pytest.mark.parametrize(
    "kind",
    [
        "garbage",
        "symbols",
        "non ascii",
        "uuid",
        "random bytes, right length",
        "last char changed",
        "truncated",
        "extended",
        "doubled",
    ],
)
def test_a_cursor_the_server_did_not_issue_is_400(gw: Gateway, author_with_23_tweets, kind: str) -> None:
    author, _ = author_with_23_tweets
    forged = _forged_cursors(_issued_cursor(gw, author))[kind]
    assert_error(gw.get(f"{USERS}/{author}/tweets", params={"limit": 5, "next_cursor": forged}), 400)


@pytest.mark.parametrize("junk", ["!", ".", "==", " ", "*"], ids=["bang", "dot", "padding", "space", "star"])
def test_an_issued_cursor_with_a_character_added_is_400(gw: Gateway, author_with_23_tweets, junk: str) -> None:
    """A cursor string the server never issued (an altered one) must not page."""
    author, _ = author_with_23_tweets
    real = _issued_cursor(gw, author)
    altered = real[:6] + junk + real[6:]
    assert altered != real
    assert_error(gw.get(f"{USERS}/{author}/tweets", params={"limit": 5, "next_cursor": altered}), 400)


def test_the_listing_of_an_unknown_user_is_404(gw: Gateway) -> None:
    assert_error(gw.get(f"{USERS}/{unknown_id()}/tweets"), 404)


@pytest.mark.parametrize("bad", BAD_IDS)
def test_the_listing_with_a_bad_user_id_is_400(gw: Gateway, bad: str) -> None:
    assert_error(gw.get(f"{USERS}/{bad}/tweets"), 400)


# --- Conventions: every error is JSON ----------------------------------------------------------


def test_a_wrong_method_on_a_user_is_a_json_error(gw: Gateway) -> None:
    response = gw.request("PUT", f"{USERS}/{next(iter(SEED_USERS))}", json={"username": "x"})
    assert_error(response, 405)


def test_a_body_over_64_kib_is_a_json_413(gw: Gateway) -> None:
    name = unique_name("big")
    response = gw.post(
        USERS,
        content=json.dumps({"username": name, "pad": "x" * 70_000}).encode(),
        headers={"Content-Type": "application/json"},
    )
    assert_error(response, 413)
    assert create_user(gw, name)["username"] == name
