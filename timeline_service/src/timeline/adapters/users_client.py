"""Client of the Users Service's internal API (/internal/...)."""

from __future__ import annotations

import asyncio
import uuid
from collections.abc import AsyncGenerator

import aiohttp
import msgspec

from shared_schemas.coalesce import Coalescer
from shared_schemas.internal_api import (
    IDLE_CONNECTION_SECONDS,
    MAX_HOME_SOURCES,
    MAX_NEWEST_A_CALL,
    MAX_TWEETS_A_CALL,
    FirstFollowers,
    FirstFollowersRequest,
    FollowersPage,
    Following,
    HomeAsk,
    HomeSource,
    HomeSources,
    HomeSourcesRequest,
    NewestTweets,
    NewestTweetsRequest,
    RecentTweetsRequest,
    TweetItem,
    Tweets,
    TweetsByIdsRequest,
    UserInfo,
)
from shared_schemas.logs import request_headers

_encoder = msgspec.json.Encoder()


class UnknownUser(Exception):
    """The Users Service has no such user."""


class FollowersUnavailable(Exception):
    """The Users Service could not read this user's followers just now (its database)."""


class TweetsUnavailable(Exception):
    """The Users Service could not read this author's tweets just now (its database)."""


# Authors whose first page of followers one request asks for, at most.
FIRST_PAGES_AT_ONCE = 32


class UsersClient:
    """aiohttp rather than httpx: the worker makes a request for every tweet it fans
    out, and aiohttp's client costs less CPU a request (docs/decisions/0011)."""

    def __init__(self, base_url: str, connect_timeout: float = 2.0, timeout: float = 10.0) -> None:
        self.base_url = base_url.rstrip("/")
        self._timeout = aiohttp.ClientTimeout(total=timeout, sock_connect=connect_timeout)
        self._session: aiohttp.ClientSession | None = None
        # Each tweet's fan-out starts with its author's first page of followers: the
        # fan-outs that wait meanwhile ask together (docs/decisions/0021), per page size.
        self._first_pages: dict[int, Coalescer[uuid.UUID, FollowersPage | None]] = {}
        # So do the rebuilds of lost homes (after a Redis loss, hundreds a second).
        self._home_sources: dict[tuple[int, int], Coalescer[HomeAsk, HomeSource | None]] = {}
        # And one author's newest tweets (after a Redis loss, every celebrity's list is
        # filled at once by its first readers; a follow's backfill), per count asked.
        self._newest: dict[int, Coalescer[uuid.UUID, list[TweetItem] | None]] = {}

    def _http(self) -> aiohttp.ClientSession:
        # Made on first use, inside the running event loop, as aiohttp requires. A
        # keep-alive pool: fan-out and hydration misses call this many times a second.
        if self._session is None:
            self._session = aiohttp.ClientSession(
                timeout=self._timeout,
                connector=aiohttp.TCPConnector(limit=50, keepalive_timeout=IDLE_CONNECTION_SECONDS),
            )
        return self._session

    async def _get(self, path: str, model: type, **params: object):
        query = {k: str(v) for k, v in params.items() if v is not None}
        async with self._http().get(self.base_url + path, params=query, headers=request_headers()) as response:
            if response.status == 404:
                raise UnknownUser(path)
            response.raise_for_status()
            return msgspec.json.decode(await response.read(), type=model)

    async def _post(self, path: str, body: msgspec.Struct, model: type):
        async with self._http().post(
            self.base_url + path,
            data=_encoder.encode(body),
            headers={"content-type": "application/json", **request_headers()},
        ) as response:
            response.raise_for_status()
            return msgspec.json.decode(await response.read(), type=model)

    async def user(self, user_id: uuid.UUID) -> UserInfo:
        return await self._get(f"/internal/users/{user_id}", UserInfo)

    async def following(self, user_id: uuid.UUID) -> Following:
        return await self._get(f"/internal/users/{user_id}/following", Following)

    async def home_source(self, user_id: uuid.UUID, threshold: int, limit: int, items: int) -> HomeSource:
        key = (threshold, limit)
        if key not in self._home_sources:
            self._home_sources[key] = Coalescer(
                lambda asks: self._home_sources_of(asks, threshold, limit), max_batch=MAX_HOME_SOURCES
            )
        found = await self._home_sources[key](HomeAsk(user_id, items))
        if found is None:
            raise UnknownUser(str(user_id))
        return found

    async def _home_sources_of(self, asks: list[HomeAsk], threshold: int, limit: int) -> list[HomeSource | None]:
        request = HomeSourcesRequest(homes=asks, threshold=threshold, limit=limit)
        return (await self._post("/internal/home-sources", request, HomeSources)).sources

    async def follower_pages(self, user_id: uuid.UUID, page_size: int) -> AsyncGenerator[list[uuid.UUID], None]:
        if page_size not in self._first_pages:
            self._first_pages[page_size] = Coalescer(
                lambda users: self._first_followers(users, page_size), max_batch=FIRST_PAGES_AT_ONCE
            )
        page = await self._first_pages[page_size](user_id)
        while True:
            if page is None:
                raise FollowersUnavailable(str(user_id))
            if page.user_ids:
                yield page.user_ids
            if page.next_after is None:
                return
            page = await self._get(
                f"/internal/users/{user_id}/followers", FollowersPage, after=page.next_after, limit=page_size
            )

    async def _first_followers(self, users: list[uuid.UUID], page_size: int) -> list[FollowersPage | None]:
        request = FirstFollowersRequest(user_ids=users, limit=page_size)
        return (await self._post("/internal/followers/first-pages", request, FirstFollowers)).pages

    async def recent_tweets(self, authors: list[uuid.UUID], before: uuid.UUID | None, limit: int) -> list[TweetItem]:
        if not authors:
            return []
        if len(authors) == 1 and before is None and 1 <= limit <= MAX_TWEETS_A_CALL:
            return await self._newest_of(authors[0], limit)
        request = RecentTweetsRequest(author_ids=authors, before=before, limit=limit)
        return (await self._post("/internal/tweets/recent", request, Tweets)).tweets

    async def _newest_of(self, author: uuid.UUID, limit: int) -> list[TweetItem]:
        if limit not in self._newest:
            self._newest[limit] = Coalescer(
                lambda authors: self._newest_each(authors, limit), max_batch=max(1, MAX_NEWEST_A_CALL // limit)
            )
        found = await self._newest[limit](author)
        if found is None:
            raise TweetsUnavailable(str(author))
        return found

    async def _newest_each(self, authors: list[uuid.UUID], limit: int) -> list[list[TweetItem] | None]:
        request = NewestTweetsRequest(author_ids=authors, limit=limit)
        return (await self._post("/internal/tweets/newest-each", request, NewestTweets)).tweets

    async def newer_tweets(self, authors: list[uuid.UUID], after: uuid.UUID, limit: int) -> list[TweetItem]:
        if not authors:
            return []
        request = RecentTweetsRequest(author_ids=authors, after=after, limit=limit)
        return (await self._post("/internal/tweets/recent", request, Tweets)).tweets

    async def tweets_by_ids(self, tweet_ids: list[uuid.UUID]) -> list[TweetItem]:
        # In calls of at most what one returns: a home past its cap (push.lua's slack)
        # may hold more ids than that, and an unfollow looks up all of them.
        step = MAX_TWEETS_A_CALL
        calls = [TweetsByIdsRequest(tweet_ids=tweet_ids[i : i + step]) for i in range(0, len(tweet_ids), step)]
        found = await asyncio.gather(*(self._post("/internal/tweets/batch", call, Tweets) for call in calls))
        return [tweet for part in found for tweet in part.tweets]

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
