import uuid
from datetime import UTC, datetime, timedelta, timezone

import pytest

from shared_schemas import codec
from shared_schemas.cursors import CursorCodec, InvalidCursor, check_secret, parse_limit
from shared_schemas.events import TweetCreated
from shared_schemas.ids import iso_ms, new_id
from shared_schemas.internal_api import ids_of


def test_cursor_round_trip_and_forgery() -> None:
    codec_a, codec_b = CursorCodec("a"), CursorCodec("b")
    tweet = new_id()
    token = codec_a.encode(tweet)
    assert codec_a.decode(token) == tweet
    for bad in (codec_b.encode(tweet), token[:-1], token + "A", "", "!!!!", str(tweet)):
        with pytest.raises(InvalidCursor):
            codec_a.decode(bad)


@pytest.mark.parametrize("raw,expected", [(None, 20), ("1", 1), ("100", 100)])
def test_limit_accepted(raw, expected) -> None:
    assert parse_limit(raw) == expected


@pytest.mark.parametrize("raw", ["0", "101", "-1", "abc", "", "1.5", " 5"])
def test_limit_rejected(raw) -> None:
    with pytest.raises(ValueError):
        parse_limit(raw)


def test_times_have_milliseconds_and_z() -> None:
    moment = datetime(2026, 11, 25, 9, 30, 0, 123456, tzinfo=UTC)
    assert iso_ms(moment) == "2026-11-25T09:30:00.123Z"
    assert iso_ms(moment.replace(microsecond=0)) == "2026-11-25T09:30:00.000Z"  # the milliseconds always
    india = timezone(timedelta(hours=5, minutes=30))
    assert iso_ms(moment.astimezone(india)) == "2026-11-25T09:30:00.123Z"  # in UTC, whatever the zone


def test_a_run_of_ids_splits_into_its_ids_in_order() -> None:
    ids = [new_id().bytes for _ in range(5)]
    run = b"".join(ids)
    assert list(ids_of(run)) == ids
    assert list(ids_of(run, 2)) == ids[:2] and list(ids_of(run, 9)) == ids
    assert ids_of(b"") == () and ids_of(run, 0) == ()


def test_event_round_trips_as_json_with_its_type() -> None:
    now = datetime.now(UTC)
    event = TweetCreated(
        event_id=new_id(),
        occurred_at=now,
        tweet_id=new_id(),
        author_id=uuid.uuid4(),
        username="alice",
        text="hi",
        created_at=now,
        author_followers_count=3,
    )
    raw = codec.encode(event)
    assert b'"type":"tweet.created"' in raw
    assert codec.decode(raw) == event


def test_the_apis_refuse_public_cursor_secrets_outside_a_local_stack() -> None:
    for public in ("local-users-cursor-secret", "CHANGE-ME-placeholder-users-cursor-secret", "short"):
        with pytest.raises(SystemExit, match="USERS_CURSOR_SECRET"):
            check_secret(public, "USERS_CURSOR_SECRET", local=False)
        check_secret(public, "USERS_CURSOR_SECRET", local=True)  # fine on a local stack
    check_secret("a-real-secret-of-32-random-chars!", "USERS_CURSOR_SECRET", local=False)
