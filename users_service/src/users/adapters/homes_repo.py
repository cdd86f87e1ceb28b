"""What a lost home is rebuilt from, in raw asyncpg.

A rebuild after a Redis loss runs hundreds of times a second, and through SQLAlchemy
most of its cost would be building rows and objects in Python (docs/decisions/0018).
These statements hand back what the Timeline Service stores, as PostgreSQL already has
it: ids as one `bytea` of 16-byte ids in list order, no row per tweet.
"""

from __future__ import annotations

import uuid

import asyncpg

from users.domain.model import Tweet

# Each caller's row (absent: no such user) and whom they follow: one index lookup and
# one index-only walk of the caller's half of the graph, per caller.
_FOLLOWEES = """
SELECT user_id, array(SELECT followee_id FROM following WHERE follower_id = user_id)
FROM users WHERE user_id = ANY($1::uuid[])
"""

# Per home (its caller, and the slice [first, last] of $4 naming the authors it follows
# on this shard): the celebrities among those authors (merged at read time, not kept
# in homes; the caller never counts as one in their own home), and the newest `limit`
# live tweet ids of the others, newest first. Each author's walk is an index-only scan
# of tweets_author_live that stops at `limit`. Nearly all of a rebuild's time in
# PostgreSQL is this statement (pg_stat_statements: docs/benchmarks.md, "Where a
# rebuild's PostgreSQL time goes").
#
# The run is aggregated from the sorted subquery without an ORDER BY of its own:
# PostgreSQL 15 (the local stacks') sorts an ordered aggregate's input again even when
# it comes sorted: every home's ids a second time (docs/benchmarks.md, "A rebuild's
# one statement"; 16, in the images, may skip that sort: then this costs nothing).
# Aggregating a sorted subquery's rows in order is what PostgreSQL does when the level
# above adds no join (its documentation on aggregate ordering); and a run out of order
# would cost speed, never a wrong home: the Users API sorts the runs of several
# databases together, and the Timeline Service checks a home's run before it lands it
# as it is (redis_store._queue_finish; push.lua places the ids one by one otherwise),
# though the items sent whole with it might then not be the page's (read from the
# Users API instead).
_NEWEST_IDS = """
SELECT a.celebrities, coalesce(r.run, ''::bytea)
FROM unnest($1::uuid[], $2::int[], $3::int[]) WITH ORDINALITY AS h(caller, first, last, n)
CROSS JOIN LATERAL (
    SELECT
        coalesce(array_agg(user_id) FILTER (WHERE celebrity), '{}') AS celebrities,
        coalesce(array_agg(user_id) FILTER (WHERE NOT celebrity), '{}') AS others
    FROM (
        SELECT user_id, followers_count >= $5 AND user_id <> h.caller AS celebrity
        FROM unnest(($4::uuid[])[h.first:h.last]) AS s(id) JOIN users ON users.user_id = s.id
    ) u
) a
CROSS JOIN LATERAL (
    SELECT string_agg(uuid_send(tweet_id), ''::bytea) AS run
    FROM (
        SELECT t.tweet_id
        FROM unnest(a.others) AS o(author) CROSS JOIN LATERAL (
            SELECT tweet_id FROM tweets
            WHERE author_id = o.author AND NOT deleted
            ORDER BY tweet_id DESC LIMIT $6
        ) t
        ORDER BY t.tweet_id DESC LIMIT $6
    ) newest
) r
ORDER BY h.n
"""


# Live tweets whole, by id, the ids given as one run of 16-byte ids: split in SQL, so no
# id becomes a Python object on the way in.
_ITEMS = """
SELECT t.tweet_id, t.author_id, u.username, t.text, t.created_at
FROM tweets t JOIN users u ON u.user_id = t.author_id
WHERE t.tweet_id = ANY(ARRAY(
    SELECT encode(substring($1::bytea FROM i FOR 16), 'hex')::uuid FROM generate_series(1, length($1::bytea), 16) i
)) AND NOT t.deleted
"""


# Each author's newest `limit` live tweets whole, by author in the order asked, newest
# first: the index walk of a rebuild, with the rows (a celebrity's list is filled whole).
_NEWEST_EACH = """
SELECT t.tweet_id, t.author_id, u.username, t.text, t.created_at
FROM unnest($1::uuid[]) WITH ORDINALITY AS a(id, n)
JOIN users u ON u.user_id = a.id
CROSS JOIN LATERAL (
    SELECT tweet_id, author_id, text, created_at FROM tweets
    WHERE author_id = a.id AND NOT deleted
    ORDER BY tweet_id DESC LIMIT $2
) t
ORDER BY a.n, t.tweet_id DESC
"""


async def followees(conn: asyncpg.Connection, user_ids: list[uuid.UUID]) -> dict[uuid.UUID, list[uuid.UUID]]:
    """Whom each of these users follows (a user absent from the answer does not exist)."""
    return {row[0]: list(row[1]) for row in await conn.fetch(_FOLLOWEES, user_ids)}


async def newest_ids(
    conn: asyncpg.Connection, homes: list[tuple[uuid.UUID, list[uuid.UUID]]], limit: int, threshold: int
) -> list[tuple[list[uuid.UUID], bytes]]:
    """For each home (its caller, the authors it follows on this shard), in order: the
    celebrities among the authors, and the others' newest ids as one 16-byte run."""
    callers: list[uuid.UUID] = []
    authors: list[uuid.UUID] = []
    firsts: list[int] = []
    lasts: list[int] = []
    for caller, followed in homes:
        callers.append(caller)
        firsts.append(len(authors) + 1)  # PostgreSQL's arrays count from 1, slices are inclusive
        authors.extend(followed)
        lasts.append(len(authors))
    rows = await conn.fetch(_NEWEST_IDS, callers, firsts, lasts, authors, threshold, limit)
    return [(list(celebrities), bytes(run)) for celebrities, run in rows]


async def items(conn: asyncpg.Connection, run: bytes) -> list[Tweet]:
    """The live tweets among these 16-byte ids, in no order."""
    return [Tweet(*row) for row in await conn.fetch(_ITEMS, run)]


async def newest_each(conn: asyncpg.Connection, authors: list[uuid.UUID], limit: int) -> dict[uuid.UUID, list[Tweet]]:
    """Each author's newest `limit` live tweets, newest first (an author with none, or
    not on this database, is absent)."""
    found: dict[uuid.UUID, list[Tweet]] = {}
    for row in await conn.fetch(_NEWEST_EACH, authors, limit):
        found.setdefault(row[1], []).append(Tweet(*row))
    return found
