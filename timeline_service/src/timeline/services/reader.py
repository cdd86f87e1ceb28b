"""GET /timeline: one page of a home timeline, from Redis on the hot path."""

from __future__ import annotations

import uuid

from prometheus_client import Counter

from timeline.adapters.feed import Feed
from timeline.adapters.tweet_cache import TweetCache
from timeline.adapters.users_client import UnknownUser, UsersClient
from timeline.domain.errors import NotFound
from timeline.domain.merge import merge_window
from timeline.services.fanout import Fanout
from timeline.services.hydration import hydrate, item_ids

REBUILDS = Counter("timeline_rebuilds_total", "Home timelines rebuilt from the source of truth")
SOURCE_PAGES = Counter("timeline_source_pages_total", "Pages completed from the Users Service past the cached window")


class Reader:
    def __init__(self, feed: Feed, cache: TweetCache, users: UsersClient, fanout: Fanout) -> None:
        self.feed, self.cache, self.users, self.fanout = feed, cache, users, fanout

    async def page(
        self, user: uuid.UUID, older_than: uuid.UUID | None, limit: int
    ) -> tuple[list[bytes], uuid.UUID | None]:
        """Up to `limit` item JSONs, newest first, and the id to continue from (or None)."""
        want = limit + 1  # one extra tells whether another page exists
        home = await self.feed.page_home(user, older_than, want)
        if not home.materialized:
            await self.rebuild(user)
            home = await self.feed.page_home(user, older_than, want)
        sources = [home]
        if home.celebrity_slices is not None:  # read with the home (a single Redis)
            sources += home.celebrity_slices
        elif home.celebrities:
            sources += await self.feed.page_celebrities(home.celebrities, older_than, want)
        ids, window_ended = merge_window([(s.ids, s.truncated) for s in sources], want)
        cached = None
        if home.prefetched is not None:  # the page script's own merge, and its items
            merged, found = home.prefetched
            if merged[: len(ids)] == ids:  # always, as the merges agree; else an MGET
                cached = found[: len(ids)]
        items = await hydrate(self.cache, self.users, ids, cached)
        # Past the cached window, older tweets still exist: continue from the source of
        # truth, as far as they go.
        if window_ended:
            items += await self._from_source(user, uuid.UUID(bytes=ids[-1]) if ids else older_than, want - len(ids))
        if len(items) < want:
            return [raw for _, raw in items], None
        return [raw for _, raw in items[:limit]], uuid.UUID(bytes=items[limit - 1][0])

    async def _from_source(
        self, user: uuid.UUID, older_than: uuid.UUID | None, count: int
    ) -> list[tuple[bytes, bytes]]:
        SOURCE_PAGES.inc()
        following = await self.users.following(user)
        authors = [user, *(u.user_id for u in following.following)]
        found = await self.users.recent_tweets(authors, older_than, count)
        return [(item.tweet_id.bytes, self.cache.encode(item)) for item in found]

    async def rebuild(self, user: uuid.UUID) -> None:
        """Recompute a missing home (expired, evicted, Redis lost) from the follow graph
        and the authors' recent tweets: Redis is a cache that may be lost."""
        try:
            following = await self.users.following(user)
        except UnknownUser:
            raise NotFound("caller (X-User-ID) not found") from None
        threshold = self.fanout.threshold
        celebrities = [u.user_id for u in following.following if u.followers_count >= threshold]
        authors = [user, *(u.user_id for u in following.following if u.followers_count < threshold)]
        await self.feed.begin_rebuild(user, celebrities)
        try:
            recent = await self.users.recent_tweets(authors, None, self.feed.max_items)
            await self.cache.put_many(recent)
            await self.feed.merge_into_home(user, item_ids(recent))
            for celebrity in celebrities:
                await self.fanout.ensure_celebrity_list(celebrity)
        except BaseException:
            await self.feed.abandon_rebuild(user)
            raise
        REBUILDS.inc()
