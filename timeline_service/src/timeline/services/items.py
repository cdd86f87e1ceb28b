"""Ids -> timeline items: the store's tweet cache first, the source of truth for what
it lacks (and the cache refilled with it)."""

from __future__ import annotations

import uuid
from typing import cast

from prometheus_client import Counter

from shared_schemas.internal_api import TweetItem
from timeline.domain import items as item_codec
from timeline.services.ports import TimelineStore, UsersSource

CACHE_LOOKUPS = Counter("timeline_tweet_cache_lookups_total", "Tweet cache lookups", ["result"])
_HITS, _MISSES = CACHE_LOOKUPS.labels("hit"), CACHE_LOOKUPS.labels("miss")  # looked up once, not per page


async def hydrate(
    store: TimelineStore, users: UsersSource, ids: list[bytes], found: list[bytes | None] | None = None
) -> list[tuple[bytes, bytes]]:
    """(id, item JSON) for each id, in order; deleted tweets are dropped. `found`: the
    cache's answer for `ids` when the caller already has it (read with the page)."""
    if found is None:
        found = await store.get_items(ids)
    if None not in found:  # the usual page: every item cached
        _HITS.inc(len(ids))
        return list(zip(ids, cast(list[bytes], found)))
    missing = [uuid.UUID(bytes=i) for i, raw in zip(ids, found) if raw is None]
    _HITS.inc(len(ids) - len(missing))
    _MISSES.inc(len(missing))
    fetched = await users.tweets_by_ids(missing)
    await store.put_items(fetched)
    by_id = {item.tweet_id.bytes: item_codec.encode(item) for item in fetched}
    found = [raw if raw is not None else by_id.get(i) for i, raw in zip(ids, found)]
    return [(i, raw) for i, raw in zip(ids, found) if raw is not None]


async def authors_of(store: TimelineStore, users: UsersSource, ids: list[bytes]) -> dict[bytes, uuid.UUID]:
    """Each id's author (for unfollow, which removes one author's tweets from a home)."""
    return {
        item.tweet_id.bytes: item.user_id
        for item in (item_codec.decode(raw) for _, raw in await hydrate(store, users, ids))
    }


def item_ids(items: list[TweetItem]) -> list[uuid.UUID]:
    return [item.tweet_id for item in items]
