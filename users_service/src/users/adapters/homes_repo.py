"""What a lost home is rebuilt from, in raw asyncpg (the first page's items come from
tweets_repo.items_by_ids).

A rebuild after a Redis loss runs hundreds of times a second, and through SQLAlchemy
most of its cost was building rows and objects in Python (docs/decisions/0018). These
statements hand back what the Timeline Service stores, as PostgreSQL already has it:
ids as one `bytea` of 16-byte ids in list order, no row per tweet.
"""

from __future__ import annotations

import uuid

import asyncpg

# The caller's row (None: no such user) and whom they follow: one index lookup and one
# index-only walk of the caller's half of the graph.
_FOLLOWEES = """
SELECT array(SELECT followee_id FROM following WHERE follower_id = $1)
FROM users WHERE user_id = $1
"""

# Of the authors on this shard: the celebrities among them (merged at read time, not
# kept in homes; the caller never counts as one in their own home), and the newest
# `limit` live tweet ids of the others, newest first. Each author's walk is an
# index-only scan of tweets_author_live that stops at `limit`.
_NEWEST_IDS = """
WITH a AS (
    SELECT user_id, followers_count >= $3 AND user_id <> $4 AS celebrity
    FROM users WHERE user_id = ANY($1::uuid[])
), t AS (
    SELECT t.tweet_id
    FROM a CROSS JOIN LATERAL (
        SELECT tweet_id FROM tweets
        WHERE author_id = a.user_id AND NOT deleted
        ORDER BY tweet_id DESC LIMIT $2
    ) t
    WHERE NOT a.celebrity
    ORDER BY t.tweet_id DESC LIMIT $2
)
SELECT
    array(SELECT user_id FROM a WHERE celebrity),
    coalesce((SELECT string_agg(uuid_send(tweet_id), ''::bytea ORDER BY tweet_id DESC) FROM t), ''::bytea)
"""


async def followees(conn: asyncpg.Connection, user_id: uuid.UUID) -> list[uuid.UUID] | None:
    row = await conn.fetchrow(_FOLLOWEES, user_id)
    return None if row is None else list(row[0])


async def newest_ids(
    conn: asyncpg.Connection, author_ids: list[uuid.UUID], limit: int, threshold: int, caller: uuid.UUID
) -> tuple[list[uuid.UUID], bytes]:
    """(celebrities among the authors, the others' newest ids as 16-byte runs)."""
    celebrities, ids = await conn.fetchrow(_NEWEST_IDS, author_ids, limit, threshold, caller)
    return list(celebrities), bytes(ids)
