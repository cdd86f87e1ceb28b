"""Merging newest-first id lists into one page: the celebrity merge at read time."""

from __future__ import annotations

import heapq
from collections.abc import Iterable


def merge_newest_first(lists: Iterable[list[bytes]], count: int | None) -> list[bytes]:
    """The first `count` distinct ids of several newest-first lists, newest first.

    Ids are 16-byte UUIDv7s, so byte order is time order. An id present in more than
    one list (a tweet fanned out before its author became a celebrity) appears once.
    """
    lists = list(lists)
    if len(lists) == 1:
        # Most pages: a home and no celebrities. A list holds each id once (push.lua),
        # and heapq.merge's generator costs more than the rest of the merge.
        return lists[0][:count] if count is not None else list(lists[0])
    merged: list[bytes] = []
    for tweet_id in heapq.merge(*lists, reverse=True):
        if merged and merged[-1] == tweet_id:
            continue
        merged.append(tweet_id)
        if len(merged) == count:
            break
    return merged


def merge_window(sources: list[tuple[list[bytes], bool]], count: int) -> tuple[list[bytes], bool]:
    """Merge page slices of several capped lists, keeping only what is certain.

    Each source is (its slice, newest first; whether the list is full to its cap, so
    older ids may exist beyond its end). A full list whose slice came up short has
    reached the end of what it caches: below its last id, the other lists' ids are no
    longer the whole story (its own older tweets are missing). So the merge keeps only
    ids newer than the newest such end, and says whether the caller must go on from the
    source of truth after the last kept id.
    """
    horizon: bytes | None = None
    for ids, full in sources:
        if full and len(ids) < count:
            if not ids:
                return [], True  # this list knows nothing below the cursor
            horizon = ids[-1] if horizon is None else max(horizon, ids[-1])
    merged = merge_newest_first([ids for ids, _ in sources], count)
    if horizon is None:
        return merged, False
    kept = [tweet_id for tweet_id in merged if tweet_id > horizon]
    return kept, len(kept) < count


def merge_newer(sources: list[tuple[list[bytes], bool]], count: int) -> tuple[list[bytes], bool]:
    """Merge slices just above a position (a refresh): each source is (the up to `count`
    ids of one list immediately newer than the position, newest first; whether that list
    lost ids there: full to its cap, every id it holds newer than the position). The
    `count` oldest distinct ids of all, newest first; or nothing and True when a list
    lost ids, which only the source of truth has then."""
    if any(lost for _, lost in sources):
        return [], True
    merged = merge_newest_first([ids for ids, _ in sources], None)
    return merged[-count:] if count else [], False
