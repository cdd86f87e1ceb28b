"""The Users Service's internal API, called as the Timeline Service calls it."""

from __future__ import annotations

import asyncio
import uuid

import aiohttp
import httpx
import msgspec
import pytest

from shared_schemas.internal_api import MAX_NEWEST_A_CALL, MAX_TWEETS_A_CALL
from tests.integration.conftest import MAX_FOLLOWING
from tests.integration.databases import refusing_connections, stars_on_two_databases
from tests.support import GATEWAY, USERS_API, eventually, unique_name
from timeline.adapters.users_client import FollowersUnavailable, TweetsUnavailable, UnknownUser, UsersClient
from users.services import accounts, follows
from users.services import tweets as tweet_service


@pytest.fixture
async def client():
    users = UsersClient(USERS_API)
    yield users
    await users.close()


async def test_followers_come_in_pages_that_cover_everyone_once(db, client: UsersClient) -> None:
    star = await accounts.create_user(db, unique_name())
    fans = [await accounts.create_user(db, unique_name()) for _ in range(7)]
    for fan in fans:
        await follows.follow(db, fan.user_id, star.user_id, MAX_FOLLOWING)

    async def collected():
        pages = [page async for page in client.follower_pages(star.user_id, 3)]
        return pages if sum(map(len, pages)) == 7 else None

    pages = await eventually(collected, timeout=15, what="all followers (written by the relay)")
    assert [len(p) for p in pages] == [3, 3, 1]
    assert sorted(u for p in pages for u in p) == sorted(f.user_id for f in fans)


async def _all_followers(client: UsersClient, user: uuid.UUID, page_size: int) -> list[uuid.UUID]:
    return [u async for page in client.follower_pages(user, page_size) for u in page]


async def test_fan_outs_asking_at_once_each_get_their_own_followers(db, client: UsersClient) -> None:
    # Asked together, the first pages go in one call (docs/decisions/0021): each author
    # still gets their own followers, paged on past the first page, and no one else's.
    stars = [*await stars_on_two_databases(db), await accounts.create_user(db, unique_name("Star"))]
    fans = {star.user_id: [] for star in stars}
    for star, count in zip(stars, (5, 2, 0), strict=True):
        for _ in range(count):
            fan = await accounts.create_user(db, unique_name())
            await follows.follow(db, fan.user_id, star.user_id, MAX_FOLLOWING)
            fans[star.user_id].append(fan.user_id)

    async def collected():
        found = await asyncio.gather(*(_all_followers(client, star, 3) for star in fans))
        return found if [len(f) for f in found] == [5, 2, 0] else None

    found = await eventually(collected, timeout=15, what="all followers (written by the relay)")
    assert [sorted(f) for f in found] == [sorted(f) for f in fans.values()]
    missing = uuid.uuid4()
    assert await _all_followers(client, missing, 3) == [], "nobody follows a user that does not exist"


async def test_a_database_that_cannot_be_read_costs_only_its_own_authors_fan_outs(db, client: UsersClient) -> None:
    healthy, cut_off = await stars_on_two_databases(db)
    fans = {}
    for star in (healthy, cut_off):
        fan = await accounts.create_user(db, unique_name())
        await follows.follow(db, fan.user_id, star.user_id, MAX_FOLLOWING)
        fans[star.user_id] = fan.user_id

    async def both_visible():
        # Right after the database lets connections in again, a read may still fail
        # once: a pooled connection whose backend was told to end (pg_terminate_backend
        # signals, the backend ends a moment later) is used before it is gone. The
        # worker retries such a run; the guarantee is that reads come back.
        try:
            found = await asyncio.gather(*(_all_followers(client, star, 10) for star in fans))
        except FollowersUnavailable:
            return None
        return found if all(found) else None

    await eventually(both_visible, timeout=15, what="both followers (written by the relay)")
    async with refusing_connections(db, cut_off.user_id):
        found = await asyncio.gather(
            _all_followers(client, healthy.user_id, 10),
            _all_followers(client, cut_off.user_id, 10),
            return_exceptions=True,
        )
    assert found[0] == [fans[healthy.user_id]], found[0]
    assert isinstance(found[1], FollowersUnavailable), found[1]
    await eventually(both_visible, timeout=15, what="the database read again")


async def test_following_lists_followees_with_their_counts(db, client: UsersClient) -> None:
    reader = await accounts.create_user(db, unique_name())
    followees = [await accounts.create_user(db, unique_name()) for _ in range(3)]
    for followee in followees:
        await follows.follow(db, reader.user_id, followee.user_id, MAX_FOLLOWING)
    result = await client.following(reader.user_id)
    assert result.user.user_id == reader.user_id and result.user.following_count == 3
    assert {u.user_id for u in result.following} == {f.user_id for f in followees}


async def test_recent_tweets_of_authors_on_both_shards_merge_newest_first(db, client: UsersClient) -> None:
    authors = [await accounts.create_user(db, unique_name()) for _ in range(6)]
    while len({db.map.for_user(a.user_id) for a in authors}) < min(2, len(db.primaries)):
        authors.append(await accounts.create_user(db, unique_name()))  # ids are random: cover both shards
    posted = [(await tweet_service.publish(db, a.user_id, f"from {a.username}", None)).tweet_id for a in authors * 2]
    found = await client.recent_tweets([a.user_id for a in authors], None, 5)
    assert [t.tweet_id for t in found] == sorted(posted, reverse=True)[:5]
    older = await client.recent_tweets([a.user_id for a in authors], found[-1].tweet_id, 100)
    assert [t.tweet_id for t in older] == sorted(posted, reverse=True)[5:]


def _tweet_reads() -> float:
    """Calls for authors' tweets the Users API answered so far, over its processes."""
    text = httpx.get(f"{USERS_API}/metrics", timeout=10).text
    paths = ('path="/internal/tweets/newest-each"', 'path="/internal/tweets/recent"')
    lines = [
        line
        for line in text.splitlines()
        if line.startswith("litestar_requests_total{") and any(p in line for p in paths)
    ]
    return sum(float(line.rsplit(" ", 1)[1]) for line in lines)


async def test_authors_newest_asked_at_once_each_get_their_own_in_few_calls(db, client: UsersClient) -> None:
    # After a lost Redis every celebrity's list is filled at once: the fills that wait
    # go together (docs/decisions/0021), and each still gets its own author's newest.
    authors = [await accounts.create_user(db, unique_name()) for _ in range(5)]
    while len({db.map.for_user(a.user_id) for a in authors}) < min(2, len(db.primaries)):
        authors.append(await accounts.create_user(db, unique_name()))  # ids are random: cover both shards
    posted: dict[uuid.UUID, list[uuid.UUID]] = {a.user_id: [] for a in authors}
    for k, author in enumerate(authors[1:]):  # the first author posts nothing
        for n in range(k + 2):
            posted[author.user_id].append((await tweet_service.publish(db, author.user_id, f"{n}", None)).tweet_id)
    gone = posted[authors[2].user_id].pop(0)
    await tweet_service.delete(db, authors[2].user_id, gone)
    asked = [*(a.user_id for a in authors), uuid.uuid4(), authors[1].user_id]  # nobody's, one twice
    calls = _tweet_reads()

    found = await asyncio.gather(*(client.recent_tweets([author], None, 3) for author in asked))

    assert _tweet_reads() - calls < len(asked)
    for author, tweets in zip(asked, found, strict=True):
        assert [t.tweet_id for t in tweets] == sorted(posted.get(author, []), reverse=True)[:3], author
        assert all(t.user_id == author for t in tweets)
    # The most one call may return: the authors asked times the tweets asked of each.
    too_many = {"author_ids": [str(uuid.uuid4())] * (MAX_NEWEST_A_CALL // 100 + 1), "limit": 100}
    refused = httpx.post(f"{USERS_API}/internal/tweets/newest-each", json=too_many)
    assert refused.status_code == 400 and "at most" in str(refused.json()), refused.text


async def test_a_database_that_cannot_be_read_costs_only_its_own_authors_newest(db, client: UsersClient) -> None:
    # Fills grouped in one call mix authors of every database: one that cannot be read
    # fails its own authors' fills only, as each failed alone before.
    healthy, cut_off = await stars_on_two_databases(db)
    posted = {a.user_id: (await tweet_service.publish(db, a.user_id, "hi", None)).tweet_id for a in (healthy, cut_off)}

    async def both_read() -> bool:  # as both_visible above: a pooled connection may fail once
        try:
            found = await asyncio.gather(*(client.recent_tweets([a], None, 5) for a in posted))
        except TweetsUnavailable:
            return False
        return [[t.tweet_id for t in tweets] for tweets in found] == [[t] for t in posted.values()]

    await eventually(both_read, timeout=15, what="both authors' tweets")
    async with refusing_connections(db, cut_off.user_id):
        found = await asyncio.gather(
            *(client.recent_tweets([a], None, 5) for a in (healthy.user_id, cut_off.user_id, healthy.user_id)),
            return_exceptions=True,
        )
    assert not isinstance(found[0], BaseException) and [t.tweet_id for t in found[0]] == [posted[healthy.user_id]]
    assert isinstance(found[1], TweetsUnavailable), found[1]
    assert found[2] == found[0]
    await eventually(both_read, timeout=15, what="the database read again")


async def test_a_homes_source_splits_celebrities_and_merges_the_rest_newest_first(db, client: UsersClient) -> None:
    reader, star, fan = [await accounts.create_user(db, unique_name()) for _ in range(3)]
    authors = [await accounts.create_user(db, unique_name()) for _ in range(4)]
    while len({db.map.for_user(a.user_id) for a in authors}) < min(2, len(db.primaries)):
        authors.append(await accounts.create_user(db, unique_name()))  # ids are random: cover both shards
    for followee in (*authors, star):
        await follows.follow(db, reader.user_id, followee.user_id, MAX_FOLLOWING)
    await follows.follow(db, fan.user_id, star.user_id, MAX_FOLLOWING)  # two followers: over the threshold
    await follows.follow(db, star.user_id, reader.user_id, MAX_FOLLOWING)  # the reader is not one in their own home
    await follows.follow(db, fan.user_id, reader.user_id, MAX_FOLLOWING)
    posted = [
        (await tweet_service.publish(db, a.user_id, f"from {a.username}", None)).tweet_id
        for a in (*authors, reader) * 2
    ]
    gone = posted.pop(3)
    await tweet_service.delete(db, authors[3].user_id, gone)
    await tweet_service.publish(db, star.user_id, "merged at read time, not kept", None)

    async def counted() -> bool:  # the relay writes the follows' second halves and counts
        return (await accounts.get_user(db, star.user_id)).followers_count == 2 and (
            await accounts.get_user(db, reader.user_id)
        ).followers_count == 2

    await eventually(counted, timeout=15, what="the followers counts")
    await tweet_service.publish(db, fan.user_id, "not followed", None)

    source = await client.home_source(reader.user_id, threshold=2, limit=7, items=3)
    newest = sorted(posted, reverse=True)
    assert source.celebrities == [star.user_id]
    ids = [uuid.UUID(bytes=source.tweet_ids[i : i + 16]) for i in range(0, len(source.tweet_ids), 16)]
    assert ids == newest[:7]
    assert [t.tweet_id for t in source.tweets] == newest[:3]  # the first page's, whole
    assert all(t.text == f"from {t.username}" for t in source.tweets)
    everything = await client.home_source(reader.user_id, threshold=100, limit=800, items=0)
    assert len(everything.tweet_ids) == 16 * (len(posted) + 1) and everything.celebrities == []
    with pytest.raises(UnknownUser):
        await client.home_source(uuid.uuid4(), threshold=2, limit=7, items=3)


async def test_rebuilds_asking_at_once_each_get_their_own_home(db, client: UsersClient) -> None:
    authors = [await accounts.create_user(db, unique_name()) for _ in range(6)]
    while len({db.map.for_user(a.user_id) for a in authors}) < min(2, len(db.primaries)):
        authors.append(await accounts.create_user(db, unique_name()))  # ids are random: cover both shards
    readers = [await accounts.create_user(db, unique_name()) for _ in range(4)]
    # Reader k follows authors k to k+2 (authors 2 and 3 get three followers), and
    # readers 1 to 3 follow reader 0 (three as well): over a threshold of 3, those are
    # celebrities, but reader 0 never in their own home.
    followed = {r.user_id: [a.user_id for a in authors[k : k + 3]] for k, r in enumerate(readers)}
    for reader in readers[1:]:
        followed[reader.user_id].append(readers[0].user_id)
    for reader, followees in followed.items():
        for followee in followees:
            await follows.follow(db, reader, followee, MAX_FOLLOWING)
    stars = {authors[2].user_id, authors[3].user_id, readers[0].user_id}

    async def counted() -> bool:  # the relay writes the follows' second halves and counts
        return all([(await accounts.get_user(db, star)).followers_count == 3 for star in stars])

    await eventually(counted, timeout=15, what="the followers counts")
    by_author: dict[uuid.UUID, list[uuid.UUID]] = {}
    for author in (*authors, readers[0]) * 2:
        posted = await tweet_service.publish(db, author.user_id, f"from {author.username}", None)
        by_author.setdefault(author.user_id, []).append(posted.tweet_id)
    unknown = uuid.uuid4()

    # The first call leaves alone; the others wait for it and go together, in one call.
    asked = [(r.user_id, k) for k, r in enumerate(readers)] + [(unknown, 2)]
    found = await asyncio.gather(
        *(client.home_source(user, threshold=3, limit=800, items=items) for user, items in asked),
        return_exceptions=True,
    )

    assert isinstance(found[-1], UnknownUser)
    for (user, items), source in zip(asked[:-1], found[:-1], strict=True):
        assert not isinstance(source, BaseException)
        celebrities = {a for a in followed[user] if a in stars}
        pushed = [user, *(a for a in followed[user] if a not in stars)]
        expected = sorted((t for a in pushed for t in by_author.get(a, [])), reverse=True)
        ids = [uuid.UUID(bytes=source.tweet_ids[i : i + 16]) for i in range(0, len(source.tweet_ids), 16)]
        assert ids == expected, user
        assert [t.tweet_id for t in source.tweets] == expected[:items]
        assert sorted(source.celebrities) == sorted(celebrities), user
    # A Timeline Service from before the grouped call asks for one home by GET: the same answer.
    alone = httpx.get(
        f"{USERS_API}/internal/users/{readers[3].user_id}/home-source", params={"threshold": 3, "items": 3}
    )
    assert alone.status_code == 200
    assert alone.json()["tweet_ids"] == msgspec.json.decode(msgspec.json.encode(found[3]))["tweet_ids"]
    assert httpx.get(f"{USERS_API}/internal/users/{unknown}/home-source", params={"threshold": 1}).status_code == 404


async def test_a_rebuild_with_a_database_that_cannot_be_read_fails_rather_than_lose_its_tweets(
    db, client: UsersClient
) -> None:
    # The reader's row is on one database, the author's tweets on another: a home built
    # without that one would be served whole and short of them, for its TTL.
    reader, author = await stars_on_two_databases(db)
    await follows.follow(db, reader.user_id, author.user_id, MAX_FOLLOWING)
    posted = {(await tweet_service.publish(db, u.user_id, "both", None)).tweet_id for u in (reader, author)}

    async def whole() -> bool:
        try:
            source = await client.home_source(reader.user_id, threshold=100, limit=800, items=0)
        except aiohttp.ClientResponseError as unavailable:  # as both_visible above says
            assert unavailable.status == 503, unavailable
            return False
        return {uuid.UUID(bytes=source.tweet_ids[i : i + 16]) for i in range(0, len(source.tweet_ids), 16)} == posted

    await eventually(whole, timeout=15, what="the home with both tweets")
    async with refusing_connections(db, author.user_id):
        found = await asyncio.gather(
            *(client.home_source(reader.user_id, threshold=100, limit=800, items=0) for _ in range(3)),
            return_exceptions=True,
        )
    assert all(isinstance(f, aiohttp.ClientResponseError) and f.status == 503 for f in found), found
    await eventually(whole, timeout=15, what="the database read again")


async def test_batch_hydration_skips_deleted_and_unknown_ids(db, client: UsersClient) -> None:
    author = await accounts.create_user(db, unique_name())
    kept = (await tweet_service.publish(db, author.user_id, "kept", None)).tweet_id
    removed = (await tweet_service.publish(db, author.user_id, "removed", None)).tweet_id
    await tweet_service.delete(db, author.user_id, removed)
    found = await client.tweets_by_ids([kept, removed, uuid.uuid4()])
    assert [(t.tweet_id, t.text, t.username) for t in found] == [(kept, "kept", author.username)]


async def test_hydration_of_more_ids_than_one_call_returns_finds_them_all(db, client: UsersClient) -> None:
    # A home past its cap may hold more ids than one call looks up (an unfollow asks
    # for all of them): the client asks in several calls.
    author = await accounts.create_user(db, unique_name())
    first, last = [(await tweet_service.publish(db, author.user_id, t, None)).tweet_id for t in ("first", "last")]
    asked = [first, *(uuid.uuid4() for _ in range(MAX_TWEETS_A_CALL)), last]
    found = await client.tweets_by_ids(asked)
    assert sorted(t.text for t in found) == ["first", "last"]


async def test_unknown_user_is_reported_as_such(client: UsersClient) -> None:
    with pytest.raises(UnknownUser):
        await client.following(uuid.uuid4())


def test_internal_routes_are_not_reachable_through_the_gateway() -> None:
    response = httpx.get(f"{GATEWAY}/internal/users/{uuid.uuid4()}")
    assert response.status_code == 404 and response.json()["detail"]
