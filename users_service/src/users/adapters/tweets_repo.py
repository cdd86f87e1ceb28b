"""SQL for tweets, on their author's shard."""

from __future__ import annotations

import uuid
from datetime import datetime
from typing import NamedTuple

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters import fence, outbox_repo
from users.adapters.raw_sql import RawStatement
from users.adapters.tables import tweets, users
from users.domain.model import Tweet
from users.domain.sharding import tweet_logical_shard, user_logical_shard

_ITEM = (tweets.c.tweet_id, tweets.c.author_id, users.c.username, tweets.c.text, tweets.c.created_at)
_JOINED = tweets.join(users, users.c.user_id == tweets.c.author_id)


# The POSTs that reach one database together are written together (docs/decisions/0021),
# in two statements on a plain asyncpg connection (adapters/raw_sql.py), each its own
# transaction: their authors' rows, then the tweets and their events (a data-modifying
# CTE), so that no tweet is ever committed without its event, without a BEGIN and a
# COMMIT (0018), and one commit for the group.
_AUTHORS = RawStatement(
    sa.select(users.c.user_id, users.c.username, users.c.followers_count).where(
        users.c.user_id == sa.any_(sa.bindparam("author_ids", type_=sa.ARRAY(UUID(as_uuid=True))))
    )
)
_NEW = sa.select(
    sa.func.unnest(
        sa.bindparam("tweet_ids", type_=sa.ARRAY(UUID(as_uuid=True))),
        sa.bindparam("author_ids", type_=sa.ARRAY(UUID(as_uuid=True))),
        sa.bindparam("texts", type_=sa.ARRAY(sa.Text)),
        sa.bindparam("created_ats", type_=sa.ARRAY(sa.DateTime(timezone=True))),
        sa.bindparam("keys", type_=sa.ARRAY(UUID(as_uuid=True))),
        sa.bindparam("logicals", type_=sa.ARRAY(sa.SmallInteger)),
        sa.bindparam("event_keys", type_=sa.ARRAY(sa.Text)),
        sa.bindparam("payloads", type_=sa.ARRAY(sa.LargeBinary)),
    )
    .table_valued("tweet_id", "author_id", "text", "created_at", "idempotency_key", "logical", "event_key", "payload")
    .render_derived(name="drafts")
).cte("new")
# The fence rows of the shards written, key-share locked: a tweet goes in only if this
# database still holds its author's shard.
_FENCE = fence.held(sa.select(_NEW.c.logical))
_INSERTED = (
    insert(tweets)
    .from_select(
        ["tweet_id", "author_id", "text", "created_at", "idempotency_key"],
        sa.select(_NEW.c.tweet_id, _NEW.c.author_id, _NEW.c.text, _NEW.c.created_at, _NEW.c.idempotency_key)
        .where(_NEW.c.logical.in_(sa.select(_FENCE.c.logical)))
        # One order of the unique keys for every group: two groups that each hold a
        # key the other retries wait on each other in one direction, never in a cycle.
        .order_by(_NEW.c.author_id, _NEW.c.idempotency_key),
    )
    .on_conflict_do_nothing(index_elements=["author_id", "idempotency_key"])
    .returning(tweets.c.tweet_id)
    .cte("inserted")
)
_RECORDED = outbox_repo.recorded_for(
    sa.select(_NEW.c.event_key, _NEW.c.payload)
    .select_from(_NEW.join(_INSERTED, _INSERTED.c.tweet_id == _NEW.c.tweet_id))
    .order_by(_NEW.c.tweet_id)  # one author's events in the order of their tweets
)
_PUBLISH = RawStatement(
    sa.select(
        sa.select(sa.func.array_agg(_INSERTED.c.tweet_id)).scalar_subquery(),
        sa.select(sa.func.count()).select_from(_RECORDED).scalar_subquery(),
        sa.select(sa.func.array_agg(_FENCE.c.logical)).scalar_subquery(),
    )
)
_BY_KEY = RawStatement(
    sa.select(tweets.c.tweet_id, tweets.c.text, tweets.c.created_at).where(
        tweets.c.author_id == sa.bindparam("author_id", type_=UUID(as_uuid=True)),
        tweets.c.idempotency_key == sa.bindparam("key", type_=UUID(as_uuid=True)),
    )
)


class NewTweet(NamedTuple):
    """A tweet to write, with its event (encoded: the outbox stores the bytes)."""

    tweet_id: uuid.UUID
    author_id: uuid.UUID
    text: str
    created_at: datetime
    key: uuid.UUID | None
    payload: bytes


async def authors(conn: asyncpg.Connection, author_ids: list[uuid.UUID]) -> dict[uuid.UUID, tuple[str, int]]:
    """Each found author's username and followers count."""
    rows = await _AUTHORS.fetch(conn, author_ids=author_ids)
    return {uuid.UUID(bytes=row[0].bytes): (row[1], row[2]) for row in rows}


class Written(NamedTuple):
    inserted: set[uuid.UUID]  # the tweets written; the others' keys were already used
    held: set[int]  # the logical shards this database still holds, of those written to


async def insert_with_events(conn: asyncpg.Connection, new: list[NewTweet], topic: str) -> Written:
    """The tweets and their events, or neither, each: not a tweet whose author already
    used its key, nor one whose author's shard a move took (not in `held`). The unique
    constraint decides, so racing retries wait on each other inside PostgreSQL and
    exactly one insert wins."""
    row = await _PUBLISH.fetchrow(
        conn,
        tweet_ids=[t.tweet_id for t in new],
        author_ids=[t.author_id for t in new],
        texts=[t.text for t in new],
        created_ats=[t.created_at for t in new],
        keys=[t.key for t in new],
        logicals=[user_logical_shard(t.author_id) for t in new],
        event_keys=[str(t.author_id) for t in new],
        payloads=[t.payload for t in new],
        topic=topic,
    )
    assert row is not None  # a SELECT of three scalars
    inserted = {uuid.UUID(bytes=i.bytes) for i in row[0] or ()}
    assert row[1] == len(inserted), "every tweet written has its event"
    return Written(inserted, set(row[2] or ()))


async def by_idempotency_key(
    conn: asyncpg.Connection, author_id: uuid.UUID, key: uuid.UUID
) -> tuple[uuid.UUID, str, datetime]:
    row = await _BY_KEY.fetchrow(conn, author_id=author_id, key=key)
    assert row is not None  # the conflict that sent us here is a committed row
    return uuid.UUID(bytes=row[0].bytes), row[1], row[2]


# A deletion: the fence row of the tweet's shard key-share locked, the tweet marked if
# it is the caller's and live, and its event recorded, in one statement on a plain
# asyncpg connection (its own transaction), as a publication is; through SQLAlchemy a
# request for someone else's tweet (a 404: `BEGIN`, the fence, the update, `ROLLBACK`)
# was the costliest a client could send (docs/benchmarks.md, session 25).
_DELETION_FENCE = fence.held(sa.select(sa.bindparam("logical", type_=sa.SmallInteger)))
_MARKED = (
    sa.update(tweets)
    .where(
        tweets.c.tweet_id == sa.bindparam("tweet_id", type_=UUID(as_uuid=True)),
        tweets.c.author_id == sa.bindparam("author_id", type_=UUID(as_uuid=True)),
        ~tweets.c.deleted,
        sa.exists(sa.select(_DELETION_FENCE.c.logical)),
    )
    .values(deleted=sa.true())
    .returning(tweets.c.tweet_id)
    .cte("marked")
)
_DELETION_RECORDED = outbox_repo.recorded_for(
    sa.select(sa.bindparam("event_key", type_=sa.Text), sa.bindparam("payload", type_=sa.LargeBinary)).select_from(
        _MARKED
    )
)
_DELETE = RawStatement(
    sa.select(
        sa.select(sa.func.count()).select_from(_DELETION_FENCE).scalar_subquery(),
        sa.select(sa.func.count()).select_from(_DELETION_RECORDED).scalar_subquery(),
    )
)


async def mark_deleted(
    conn: asyncpg.Connection, tweet_id: uuid.UUID, author_id: uuid.UUID, topic: str, payload: bytes
) -> bool:
    """Mark the tweet deleted and record its event (`payload`, keyed by its author), if
    it is `author_id`'s and live; False if not. ShardMoved if this database no longer
    holds its shard."""
    logical = tweet_logical_shard(tweet_id)
    row = await _DELETE.fetchrow(
        conn,
        logical=logical,
        tweet_id=tweet_id,
        author_id=author_id,
        event_key=str(author_id),
        payload=payload,
        topic=topic,
    )
    assert row is not None  # a SELECT of two scalars
    fence.raise_unless_held(bool(row[0]), logical)
    return bool(row[1])


# A user's own live tweets, newest first, older than $2, with whether the user exists,
# in one statement on one connection (a page costs one round trip, not a user lookup
# and then the listing). The page's ids come from an index-only walk down
# tweets_author_live, which reads no more entries than the page and needs no sort; only
# then are their rows read, by key. Asking for the rows in the walk itself let the
# planner read all of an author's tweets and sort them instead (a bitmap scan: cheaper
# by its estimate for the average author, and a prepared statement's generic plan
# would have kept it for an author with a hundred thousand); a walk that reads only
# the index is the cheaper plan while the visibility map covers the table (autovacuum
# keeps it so: migration 0006). `tweet_id < $2`, with the
# largest id for a first page, keeps the cursor an index condition of the walk (an
# `IS NULL OR` would make it a filter, and a page deep in a long history would walk
# every newer tweet first). The fence row is read too, for an absent user: a database
# that a move left must not answer "no such user" (fence.held_row).
_LISTING = f"""
SELECT f.held, u.username, t.tweet_id, t.text, t.created_at
FROM {fence.held_row("$4")}
LEFT JOIN users u ON u.user_id = $1::uuid
LEFT JOIN LATERAL (
    SELECT tweet_id FROM tweets
    WHERE author_id = $1::uuid AND NOT deleted AND tweet_id < $2::uuid
    ORDER BY tweet_id DESC LIMIT $3::int
) page ON u.user_id IS NOT NULL
LEFT JOIN tweets t ON t.tweet_id = page.tweet_id
ORDER BY page.tweet_id DESC
"""
_NEWEST_POSSIBLE = uuid.UUID(int=(1 << 128) - 1)


async def by_author(
    conn: asyncpg.Connection, author_id: uuid.UUID, before: uuid.UUID | None, limit: int
) -> list[Tweet] | None:
    """The author's live tweets older than `before` (all, if None), newest first, at
    most `limit`; None if there is no such user (ShardMoved if this database no longer
    holds their shard)."""
    logical = user_logical_shard(author_id)
    rows = await conn.fetch(_LISTING, author_id, before or _NEWEST_POSSIBLE, limit, logical)
    first = rows[0]  # always one row at least: the fence's
    if first[1] is None:
        fence.raise_unless_held(first[0], logical)
        return None
    return [Tweet(row[2], author_id, row[1], row[3], row[4]) for row in rows if row[2] is not None]


async def recent_by_authors(
    conn: AsyncConnection,
    author_ids: list[uuid.UUID],
    before: uuid.UUID | None,
    limit: int,
    after: uuid.UUID | None = None,
) -> list[Tweet]:
    """The newest `limit` tweets of these authors (all on this shard) older than
    `before`, or, given `after`, the oldest `limit` newer than it; newest first either
    way. One query: a LATERAL per author walks its (author_id, tweet_id) index for at
    most `limit` rows."""
    authors = (
        sa.func.unnest(sa.cast(author_ids, sa.ARRAY(tweets.c.author_id.type)))
        .table_valued("id")
        .render_derived(name="a")
    )
    # Walking up from `after` (a refresh) reads the index ascending; down, descending.
    order = tweets.c.tweet_id.asc() if after is not None else tweets.c.tweet_id.desc()
    inner = (
        sa.select(*_ITEM)
        .select_from(_JOINED)
        .where(tweets.c.author_id == authors.c.id, ~tweets.c.deleted)
        .order_by(order)
        .limit(limit)
    )
    if after is not None:
        inner = inner.where(tweets.c.tweet_id > after)
    elif before is not None:
        inner = inner.where(tweets.c.tweet_id < before)
    per_author = inner.lateral("t")
    outer = per_author.c.tweet_id.asc() if after is not None else per_author.c.tweet_id.desc()
    stmt = sa.select(per_author).select_from(authors.join(per_author, sa.true())).order_by(outer).limit(limit)
    found = [Tweet(*row) for row in await conn.execute(stmt)]
    return found[::-1] if after is not None else found


async def by_ids(conn: AsyncConnection, tweet_ids: list[uuid.UUID]) -> list[Tweet]:
    stmt = sa.select(*_ITEM).select_from(_JOINED).where(tweets.c.tweet_id.in_(tweet_ids), ~tweets.c.deleted)
    return [Tweet(*row) for row in await conn.execute(stmt)]
