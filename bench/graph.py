"""The synthetic social graph: users, follows with power-law follower counts, tweets.

Everything is numpy arrays of user and tweet *indices*; ids are made the way the
services make them (user ids UUIDv7 from shared_schemas.ids.new_id, tweet ids from
users.domain.sharding.new_tweet_id, which carries the author's logical shard) and
sorted, so index order is id order (and, for tweets, time order).

Follower counts follow a power law by popularity rank r: f(r) = C * r^-0.6 (at most
every other user), with C set so that users follow `follows` accounts on average.
At 100,000 users and 100 follows that puts about ten accounts above the default
celebrity threshold (10,000 followers), the largest near 40,000. Who follows whom is
drawn with a lognormal "activity" weight, so following counts are skewed too.
The average is capped at threshold/5 so that only a few accounts cross a tiny
threshold (the test stack's is 3).
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

import numpy as np

from shared_schemas.ids import new_id
from users.domain.sharding import new_tweet_id

EXPONENT = 0.6

_WORDS = (
    "the a timeline redis kafka tweet follow news today morning coffee release build ship "
    "fast slow graph celebrity fan out read write cache shard postgres python benchmark "
    "latency throughput page cursor merge home list event worker queue hello world again "
    "🚀 ✨ café naïve über"
).split()


@dataclass
class Graph:
    n: int
    user_ids: list[uuid.UUID]  # ascending
    user_bytes: np.ndarray  # (n, 16) uint8
    usernames: list[str]
    follower: np.ndarray  # (E,) int32, edges sorted by (follower, followee)
    followee: np.ndarray  # (E,) int32
    followers_count: np.ndarray  # (n,) int64
    following_count: np.ndarray  # (n,) int64
    tweet_ids: list[uuid.UUID]  # ascending = oldest first
    tweet_bytes: np.ndarray  # (T, 16) uint8
    tweet_author: np.ndarray  # (T,) int32
    tweet_text: np.ndarray  # (T,) int32 index into texts
    texts: list[str]
    celebrity: np.ndarray  # (n,) bool: followers_count >= threshold
    # The celebrity panel (see _panel): users following exactly k of its celebrities,
    # by k; and the accounts that only exist to make them celebrities (never sampled).
    panel_members: dict[int, list[int]]
    fans: np.ndarray  # (n,) bool

    @property
    def edges(self) -> int:
        return len(self.follower)

    @property
    def tweets(self) -> int:
        return len(self.tweet_ids)

    def edge_ptr(self) -> np.ndarray:
        """CSR offsets of each follower's edges (edges are sorted by follower)."""
        ptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.follower, minlength=self.n), out=ptr[1:])
        return ptr

    def author_tweets(self) -> tuple[np.ndarray, np.ndarray]:
        """(ptr, tweets): each author's tweet indices, oldest first, CSR."""
        order = np.argsort(self.tweet_author, kind="stable").astype(np.int64)
        ptr = np.zeros(self.n + 1, dtype=np.int64)
        np.cumsum(np.bincount(self.tweet_author, minlength=self.n), out=ptr[1:])
        return ptr, order

    def follows_celebrity(self) -> np.ndarray:
        """(n,) bool: the user follows at least one celebrity."""
        has = np.zeros(self.n, dtype=bool)
        has[self.follower[self.celebrity[self.followee]]] = True
        return has


def follower_targets(n: int, follows: int, rng: np.random.Generator) -> np.ndarray:
    """Follower count of each user (power law by a random popularity rank)."""
    if n < 2:
        return np.zeros(n, dtype=np.int64)
    cap = n - 1 if n < 1000 else n // 2
    shape = np.arange(1, n + 1, dtype=np.float64) ** -EXPONENT
    want = float(follows) * n
    scale = want / shape.sum()
    for _ in range(50):  # the cap removes mass: rescale until the total is right
        counts = np.minimum(np.floor(scale * shape + rng.random(n)), cap)
        total = counts.sum()
        if total <= 0 or abs(total - want) / want < 0.002:
            break
        scale *= want / total
    by_rank = counts.astype(np.int64)
    return by_rank[rng.permutation(n)]


def _edges(n: int, targets: np.ndarray, rng: np.random.Generator) -> tuple[np.ndarray, np.ndarray]:
    activity = rng.lognormal(0.0, 1.0, n)
    cdf = np.cumsum(activity)
    cdf /= cdf[-1]
    followers_parts, followees_parts = [], []
    for v in np.nonzero(targets)[0]:
        k = int(targets[v])
        if k * 3 > n:
            chosen = rng.choice(n - 1, size=k, replace=False)
            chosen[chosen >= v] += 1
        else:
            chosen = np.empty(0, dtype=np.int64)
            while len(chosen) < k:
                draw = np.searchsorted(cdf, rng.random(int((k - len(chosen)) * 1.3) + 4))
                draw = np.minimum(draw, n - 1)
                chosen = np.unique(np.concatenate([chosen, draw[draw != v]]))
            if len(chosen) > k:
                chosen = rng.choice(chosen, size=k, replace=False)
        followers_parts.append(chosen.astype(np.int32))
        followees_parts.append(np.full(k, v, dtype=np.int32))
    if not followers_parts:
        return np.empty(0, dtype=np.int32), np.empty(0, dtype=np.int32)
    follower = np.concatenate(followers_parts)
    followee = np.concatenate(followees_parts)
    order = np.lexsort((followee, follower))
    return follower[order], followee[order]


PANEL_GROUPS = (5, 20, 50)
PANEL_TWEETS = 100  # each panel celebrity's: enough to fill any page of its list


def _panel(
    natural: int, fans: int, follower: np.ndarray, followee: np.ndarray, threshold: int, size: int, rng
) -> tuple[np.ndarray, np.ndarray, np.ndarray, dict[int, list[int]]]:
    """Users who follow 5, 20 and 50 celebrities, for the cost of a page by how many it
    merges: the natural graph has about ten celebrities at 100,000 users, and its users
    follow 2.3 of them on average. Fifty ordinary accounts become celebrities, followed
    by `fans` accounts added for it (indices natural.., each following all fifty); `size`
    users who followed no celebrity follow k of them each, for each k of PANEL_GROUPS.
    Returns the edges with the panel's added, the panel's celebrities, and the members."""
    counts = np.bincount(followee, minlength=natural)
    plain = np.ones(natural, dtype=bool)
    plain[follower[counts[followee] >= threshold]] = False
    stars = rng.choice(np.nonzero(counts < threshold)[0], size=max(PANEL_GROUPS), replace=False)
    plain[stars] = False
    plain[follower[np.isin(followee, stars)]] = False  # following one already: not exactly k
    pool = rng.permutation(np.nonzero(plain)[0])
    members: dict[int, list[int]] = {}
    parts_a, parts_b = [follower], [followee]
    for i, k in enumerate(PANEL_GROUPS):
        chosen = pool[i * size : (i + 1) * size]
        members[k] = chosen.tolist()
        picks = np.argsort(rng.random((len(chosen), len(stars))), axis=1)[:, :k]
        parts_a.append(np.repeat(chosen, k).astype(np.int32))
        parts_b.append(stars[picks].ravel().astype(np.int32))
    fan_ids = np.arange(natural, natural + fans, dtype=np.int32)
    parts_a.append(np.repeat(fan_ids, len(stars)))
    parts_b.append(np.tile(stars.astype(np.int32), fans))
    a, b = np.concatenate(parts_a), np.concatenate(parts_b)
    pairs = np.unique(a.astype(np.int64) * (natural + fans) + b)  # sorted by (follower, followee), once each
    return (pairs // (natural + fans)).astype(np.int32), (pairs % (natural + fans)).astype(np.int32), stars, members


def _texts(rng: np.random.Generator, count: int = 2000) -> list[str]:
    texts = []
    for i in range(count):
        words = rng.choice(len(_WORDS), size=int(rng.integers(4, 30)))
        text = " ".join(_WORDS[w] for w in words)
        texts.append(f"{text} #{i}"[:280])
    return texts


def _sorted_ids(ids: list[uuid.UUID]) -> np.ndarray:
    raw = np.frombuffer(b"".join(u.bytes for u in ids), dtype=np.uint8).reshape(-1, 16)
    hi = raw[:, :8].copy().view(">u8").ravel()
    lo = raw[:, 8:].copy().view(">u8").ravel()
    return np.lexsort((lo, hi))


def build(n: int, follows: int, tweets_per_user: int, threshold: int, seed: int, panel_size: int = 0) -> Graph:
    """`panel_size` > 0 (and room for it): add the celebrity panel (_panel), `threshold`
    more accounts (the fans) and PANEL_TWEETS tweets by each panel celebrity."""
    rng = np.random.default_rng(seed)
    follows = max(1, min(follows, threshold // 5, max(1, n // 3)))
    panel = panel_size > 0 and n >= 2 * threshold and n > 4 * panel_size * len(PANEL_GROUPS)
    fans = threshold if panel else 0
    total_users = n + fans
    ids = [new_id() for _ in range(total_users)]
    ids = [ids[i] for i in _sorted_ids(ids)] if total_users else []
    user_bytes = np.frombuffer(b"".join(u.bytes for u in ids), dtype=np.uint8).reshape(-1, 16)
    tag = f"{seed % 1000:03d}"
    usernames = [f"b{tag}_{i}" for i in range(total_users)]  # unique whatever the case, <= 15 chars
    targets = follower_targets(n, follows, rng)
    follower, followee = _edges(n, targets, rng)
    members: dict[int, list[int]] = {}
    stars = np.empty(0, dtype=np.int64)
    if panel:
        follower, followee, stars, members = _panel(n, fans, follower, followee, threshold, panel_size, rng)
    followers_count = np.bincount(followee, minlength=total_users).astype(np.int64)
    following_count = np.bincount(follower, minlength=total_users).astype(np.int64)
    # Tweets: authors drawn with a lognormal activity weight (a few tweet a lot); the
    # fans never tweet; each panel celebrity adds PANEL_TWEETS.
    total = n * tweets_per_user
    weight = rng.lognormal(0.0, 1.0, n)
    authors = rng.choice(n, size=total, p=weight / weight.sum()).astype(np.int32) if n else np.empty(0, np.int32)
    authors = np.concatenate([authors, np.repeat(stars, PANEL_TWEETS).astype(np.int32)])
    tweet_ids = [new_tweet_id(ids[a]) for a in authors.tolist()]
    order = _sorted_ids(tweet_ids) if len(authors) else np.empty(0, dtype=np.int64)
    tweet_ids = [tweet_ids[i] for i in order]
    authors = authors[order]
    tweet_bytes = np.frombuffer(b"".join(t.bytes for t in tweet_ids), dtype=np.uint8).reshape(-1, 16)
    texts = _texts(rng)
    is_fan = np.zeros(total_users, dtype=bool)
    is_fan[n:] = True
    return Graph(
        n=total_users,
        user_ids=ids,
        user_bytes=user_bytes,
        usernames=usernames,
        follower=follower,
        followee=followee,
        followers_count=followers_count,
        following_count=following_count,
        tweet_ids=tweet_ids,
        tweet_bytes=tweet_bytes,
        tweet_author=authors,
        tweet_text=rng.integers(0, len(texts), size=len(authors)).astype(np.int32),
        texts=texts,
        celebrity=followers_count >= threshold,
        panel_members=members,
        fans=is_fan,
    )
