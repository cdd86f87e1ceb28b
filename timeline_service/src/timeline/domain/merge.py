"""Merging newest-first id lists into one page: the celebrity merge at read time."""

from __future__ import annotations

import heapq
from collections.abc import Iterable


def merge_newest_first(lists: Iterable[list[bytes]], count: int) -> list[bytes]:
    """The first `count` distinct ids of several newest-first lists, newest first.

    Ids are 16-byte UUIDv7s, so byte order is time order. An id present in more than
    one list (a tweet fanned out before its author became a celebrity) appears once.
    """
    merged: list[bytes] = []
    for tweet_id in heapq.merge(*lists, reverse=True):
        if merged and merged[-1] == tweet_id:
            continue
        merged.append(tweet_id)
        if len(merged) == count:
            break
    return merged
