"""Client of the Users Service's internal API (/internal/...)."""

from __future__ import annotations

import uuid
from collections.abc import AsyncIterator

import httpx
import msgspec

from shared_schemas.internal_api import (
    FollowersPage, Following, RecentTweetsRequest, Tweets, TweetsByIdsRequest, TweetItem, UserInfo,
)

_encoder = msgspec.json.Encoder()


class UnknownUser(Exception):
    """The Users Service has no such user."""


class UsersClient:
    def __init__(self, base_url: str) -> None:
        # Keep-alive pool: fan-out and hydration misses call this many times a second.
        self.http = httpx.AsyncClient(
            base_url=base_url, timeout=10.0, limits=httpx.Limits(max_connections=50, max_keepalive_connections=20)
        )

    async def _get(self, path: str, model: type, **params: object):
        response = await self.http.get(path, params={k: str(v) for k, v in params.items() if v is not None})
        if response.status_code == 404:
            raise UnknownUser(path)
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=model)

    async def _post(self, path: str, body: msgspec.Struct, model: type):
        response = await self.http.post(path, content=_encoder.encode(body), headers={"content-type": "application/json"})
        response.raise_for_status()
        return msgspec.json.decode(response.content, type=model)

    async def user(self, user_id: uuid.UUID) -> UserInfo:
        return await self._get(f"/internal/users/{user_id}", UserInfo)

    async def following(self, user_id: uuid.UUID) -> Following:
        return await self._get(f"/internal/users/{user_id}/following", Following)

    async def follower_pages(self, user_id: uuid.UUID, page_size: int) -> AsyncIterator[list[uuid.UUID]]:
        after: uuid.UUID | None = None
        while True:
            page: FollowersPage = await self._get(
                f"/internal/users/{user_id}/followers", FollowersPage, after=after, limit=page_size
            )
            if page.user_ids:
                yield page.user_ids
            if page.next_after is None:
                return
            after = page.next_after

    async def recent_tweets(self, authors: list[uuid.UUID], before: uuid.UUID | None, limit: int) -> list[TweetItem]:
        if not authors:
            return []
        request = RecentTweetsRequest(author_ids=authors, before=before, limit=limit)
        return (await self._post("/internal/tweets/recent", request, Tweets)).tweets

    async def tweets_by_ids(self, tweet_ids: list[uuid.UUID]) -> list[TweetItem]:
        if not tweet_ids:
            return []
        return (await self._post("/internal/tweets/batch", TweetsByIdsRequest(tweet_ids=tweet_ids), Tweets)).tweets

    async def close(self) -> None:
        await self.http.aclose()
