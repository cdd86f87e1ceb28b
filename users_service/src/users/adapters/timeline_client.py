"""The Timeline Service's internal API, as the Users API calls it: each tweet into its
author's own home, and each delete out of it, as the request is answered, so the author
reads their own writes even while the fan-out lags (docs/decisions/0016). The POSTs that
come while one call is on its way go together in the next (0021).

Best effort by design: the outbox and the fan-out deliver the same a moment later, so a
Timeline Service that is down or slow costs the author only that head start, never the
write. Failures are counted and logged, not raised."""

from __future__ import annotations

import logging
import uuid

import aiohttp
import msgspec
from prometheus_client import Counter

from shared_schemas.coalesce import Coalescer
from shared_schemas.internal_api import IDLE_CONNECTION_SECONDS, OwnTweets, TweetItem
from shared_schemas.logs import request_headers

log = logging.getLogger("users.own_timeline")
FAILURES = Counter("users_own_timeline_failures_total", "Own-home updates the Timeline API did not take")


class OwnTimeline:
    def __init__(self, base_url: str, timeout: float) -> None:
        self.base_url, self.timeout = base_url.rstrip("/"), aiohttp.ClientTimeout(total=timeout)
        self._session: aiohttp.ClientSession | None = None
        # One request at a time (docs/decisions/0021): a hung Timeline API costs a POST
        # at most two timeouts, and the POST still succeeds.
        self._tweeted = Coalescer(self._send_tweets)

    def _http(self) -> aiohttp.ClientSession:
        if self._session is None:  # made in the running loop, on first use
            self._session = aiohttp.ClientSession(
                timeout=self.timeout, connector=aiohttp.TCPConnector(keepalive_timeout=IDLE_CONNECTION_SECONDS)
            )
        return self._session

    async def tweeted(self, item: TweetItem) -> None:
        await self._tweeted(item)

    async def _send_tweets(self, items: list[TweetItem]) -> list[None]:
        await self._send("POST", "/internal/homes/own-tweets", msgspec.json.encode(OwnTweets(items)), len(items))
        return [None] * len(items)

    async def deleted(self, author: uuid.UUID, tweet_id: uuid.UUID) -> None:
        await self._send("DELETE", f"/internal/homes/{author}/tweets/{tweet_id}", None, 1)

    async def _send(self, method: str, path: str, body: bytes | None, count: int) -> None:
        headers = {"content-type": "application/json"} if body is not None else {}
        # The request this call is made for, so one grep follows it into the Timeline
        # API's log (a group of tweets is nobody's request: shared_schemas/coalesce.py).
        headers.update(request_headers())
        try:
            async with self._http().request(method, self.base_url + path, data=body, headers=headers) as response:
                if response.status >= 300:
                    raise aiohttp.ClientResponseError(response.request_info, (), status=response.status)
        except (aiohttp.ClientError, TimeoutError, OSError) as exc:
            FAILURES.inc(count)
            log.warning(
                "own home not updated; the fan-out will", extra={"path": path, "tweets": count, "error": repr(exc)}
            )

    async def close(self) -> None:
        if self._session is not None:
            await self._session.close()
