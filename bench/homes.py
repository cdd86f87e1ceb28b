"""What the worker (or a rebuild) would hold for each user, computed in bulk with numpy.

A home is the newest TIMELINE_MAX_ITEMS tweets of the user and of every non-celebrity
account they follow, newest first (Reader.rebuild: users.recent_tweets(authors, None,
max_items) with authors = self + non-celebrity followees). Celebrities' tweets stay in
their own list, merged at read time.
"""

from __future__ import annotations

from collections.abc import Iterator

import numpy as np

from bench.graph import Graph


def chunks(graph: Graph, max_items: int, users_per_chunk: int = 4000) -> Iterator[tuple[int, np.ndarray, np.ndarray]]:
    """(first user, ptr, tweets) per chunk of users: user `first + i` has tweet indices
    tweets[ptr[i]:ptr[i+1]], newest first."""
    a_ptr, a_tweets = graph.author_tweets()
    e_ptr = graph.edge_ptr()
    total_tweets = max(graph.tweets, 1)
    for first in range(0, graph.n, users_per_chunk):
        last = min(graph.n, first + users_per_chunk)
        follower = graph.follower[e_ptr[first] : e_ptr[last]]
        followee = graph.followee[e_ptr[first] : e_ptr[last]]
        keep = ~graph.celebrity[followee]
        own = np.arange(first, last, dtype=np.int64)
        f = np.concatenate([follower[keep].astype(np.int64), own])
        g = np.concatenate([followee[keep].astype(np.int64), own])
        # Each author contributes at most their newest max_items tweets.
        count = np.minimum(a_ptr[g + 1] - a_ptr[g], max_items)
        total = int(count.sum())
        before = np.cumsum(count) - count
        position = np.repeat(a_ptr[g + 1] - count - before, count) + np.arange(total, dtype=np.int64)
        tweet = a_tweets[position]
        key = (np.repeat(f, count) - first) * total_tweets + (total_tweets - 1 - tweet)
        key.sort()
        user = key // total_tweets
        tweet = total_tweets - 1 - (key - user * total_tweets)
        starts = np.searchsorted(user, np.arange(last - first + 1))
        rank = np.arange(len(user)) - starts[user]
        kept = rank < max_items
        user, tweet = user[kept], tweet[kept]
        ptr = np.searchsorted(user, np.arange(last - first + 1))
        yield first, ptr, tweet


def celebrity_lists(graph: Graph, max_items: int) -> dict[int, np.ndarray]:
    """Each celebrity's newest max_items tweet indices, newest first."""
    a_ptr, a_tweets = graph.author_tweets()
    return {
        int(c): a_tweets[max(a_ptr[c], a_ptr[c + 1] - max_items) : a_ptr[c + 1]][::-1]
        for c in np.nonzero(graph.celebrity)[0]
    }
