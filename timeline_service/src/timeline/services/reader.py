"""GET /timeline: one page of a home timeline, from the store on the hot path."""

from __future__ import annotations

import time
import uuid
from collections.abc import Awaitable, Callable
from typing import NamedTuple

from prometheus_client import Counter

from timeline.adapters.users_client import UnknownUser
from timeline.domain import items as item_codec
from timeline.domain.errors import NotFound
from timeline.services.celebrities import Celebrities
from timeline.services.items import hydrate, item_ids
from timeline.services.ports import Page, TimelineStore, UsersSource

REBUILDS = Counter("timeline_rebuilds_total", "Home timelines rebuilt from the source of truth")
SOURCE_PAGES = Counter("timeline_source_pages_total", "Pages completed from the Users Service past the cached window")


# Caller ids the source of truth does not know, remembered per process so that made-up
# X-User-IDs cost a dict lookup, not a Redis script, an HTTP call and SQL each. Ids are
# made by the server (UUIDv7), so none is asked for before it exists: a short memory of
# "unknown" never hides a real user.
UNKNOWN_MAX = 50_000


class Slice(NamedTuple):
    """Items of a home, newest first (the API's JSON of each), and where the page ends."""

    items: list[bytes]
    older: uuid.UUID | None  # continue down from here (None: nothing older)
    newest: uuid.UUID | None  # the newest item's id: a refresh goes on up from here


class Reader:
    def __init__(
        self, store: TimelineStore, users: UsersSource, celebrities: Celebrities, unknown_ttl: float = 30.0
    ) -> None:
        self.store, self.users, self.celebrities = store, users, celebrities
        self.unknown_ttl = unknown_ttl
        self._unknown: dict[uuid.UUID, float] = {}  # caller id -> until when it is known unknown

    def _check_known(self, user: uuid.UUID) -> None:
        if self._unknown and self._unknown.get(user, 0.0) > time.monotonic():
            raise NotFound("caller (X-User-ID) not found")

    async def _read(self, user: uuid.UUID, read: Callable[[], Awaitable[Page]]) -> Page:
        """`read()` of the store, after rebuilding what it lacks (a lost home, a lost
        celebrity list)."""
        page = await read()
        if not page.materialized or page.unfilled:
            if not page.materialized:
                await self.rebuild(user)
            for celebrity in page.unfilled:  # a followed celebrity's list was lost
                await self.celebrities.ensure_list(celebrity)
            page = await read()
        return page

    async def page(self, user: uuid.UUID, older_than: uuid.UUID | None, limit: int) -> Slice:
        """Up to `limit` items from the top (or below `older_than`), newest first."""
        self._check_known(user)
        want = limit + 1  # one extra tells whether another page exists
        page = await self._read(user, lambda: self.store.read_page(user, older_than, want))
        items = await hydrate(self.store, self.users, page.ids, page.items)
        # Past the cached window, older tweets still exist: continue from the source of
        # truth, as far as they go.
        if page.window_ended:
            after = uuid.UUID(bytes=page.ids[-1]) if page.ids else older_than
            items += await self._from_source(user, after, want - len(page.ids))
        newest = uuid.UUID(bytes=items[0][0]) if items else None
        if len(items) < want:
            return Slice([raw for _, raw in items], None, newest)
        return Slice([raw for _, raw in items[:limit]], uuid.UUID(bytes=items[limit - 1][0]), newest)

    async def newer(self, user: uuid.UUID, newer_than: uuid.UUID, limit: int) -> Slice:
        """The `limit` items immediately newer than `newer_than`, newest first (a
        refresh); `newest` is the position to refresh from next: the newest item's, or
        `newer_than` again when nothing is newer."""
        self._check_known(user)
        page = await self._read(user, lambda: self.store.read_newer(user, newer_than, limit))
        if page.window_ended:  # a list lost ids just above the position (a reader away long)
            SOURCE_PAGES.inc()
            following = await self.users.following(user)
            authors = [user, *(u.user_id for u in following.following)]
            found = await self.users.newer_tweets(authors, newer_than, limit)
            items = [(item.tweet_id.bytes, item_codec.encode(item)) for item in found]
        else:
            items = await hydrate(self.store, self.users, page.ids, page.items)
        return Slice([raw for _, raw in items], None, uuid.UUID(bytes=items[0][0]) if items else newer_than)

    async def _from_source(
        self, user: uuid.UUID, older_than: uuid.UUID | None, count: int
    ) -> list[tuple[bytes, bytes]]:
        SOURCE_PAGES.inc()
        following = await self.users.following(user)
        authors = [user, *(u.user_id for u in following.following)]
        found = await self.users.recent_tweets(authors, older_than, count)
        return [(item.tweet_id.bytes, item_codec.encode(item)) for item in found]

    async def rebuild(self, user: uuid.UUID) -> None:
        """Recompute a missing home (expired, evicted, Redis lost) from the follow graph
        and the authors' recent tweets: the store is a cache that may be lost."""
        try:
            following = await self.users.following(user)
        except UnknownUser:
            if len(self._unknown) >= UNKNOWN_MAX:
                del self._unknown[next(iter(self._unknown))]  # the oldest
            self._unknown[user] = time.monotonic() + self.unknown_ttl
            raise NotFound("caller (X-User-ID) not found") from None
        celebrities: list[uuid.UUID] = []
        authors = [user]
        for followee in following.following:
            is_celebrity = self.celebrities.is_celebrity(followee.followers_count)
            (celebrities if is_celebrity else authors).append(followee.user_id)
        await self.store.begin_rebuild(user, celebrities)
        try:
            recent = await self.users.recent_tweets(authors, None, self.store.max_items)
            await self.store.put_items(recent)
            await self.store.merge_into_home(user, item_ids(recent))
            for celebrity in celebrities:
                await self.celebrities.ensure_list(celebrity)
            await self.store.finish_rebuild(user)
        except BaseException:
            await self.store.abandon_rebuild(user)
            raise
        REBUILDS.inc()
