"""SQL for tweets, on their author's shard."""

from __future__ import annotations

import uuid
from datetime import datetime

import asyncpg
import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters import fence, outbox_repo
from users.adapters.raw_sql import RawStatement
from users.adapters.tables import tweets, users
from users.domain.errors import ShardMoved
from users.domain.model import Tweet
from users.domain.sharding import tweet_logical_shard, user_logical_shard

_ITEM = (tweets.c.tweet_id, tweets.c.author_id, users.c.username, tweets.c.text, tweets.c.created_at)
_JOINED = tweets.join(users, users.c.user_id == tweets.c.author_id)


# A POST in two statements, each its own transaction, on a plain asyncpg connection
# (adapters/raw_sql.py): the author's row, then the tweet and its event together (a
# data-modifying CTE), so that neither is ever committed without the other, without a
# BEGIN and a COMMIT (docs/decisions/0018).
_AUTHOR = RawStatement(
    sa.select(users.c.username, users.c.followers_count).where(
        users.c.user_id == sa.bindparam("author_id", type_=UUID(as_uuid=True))
    )
)
_FENCE = fence.held(sa.bindparam("logical", type_=sa.SmallInteger))
_INSERTED = (
    insert(tweets)
    .from_select(
        ["tweet_id", "author_id", "text", "created_at", "idempotency_key"],
        # One row if this database still holds the author's shard, none if a move took it.
        sa.select(
            sa.bindparam("tweet_id", type_=UUID(as_uuid=True)),
            sa.bindparam("author_id", type_=UUID(as_uuid=True)),
            sa.bindparam("text", type_=sa.Text),
            sa.bindparam("created_at", type_=sa.DateTime(timezone=True)),
            sa.bindparam("idempotency_key", type_=UUID(as_uuid=True)),
        ).select_from(_FENCE),
    )
    .on_conflict_do_nothing(index_elements=["author_id", "idempotency_key"])
    .returning(tweets.c.tweet_id)
    .cte("inserted")
)
_RECORDED = outbox_repo.recorded_with(_INSERTED)
_PUBLISH = RawStatement(
    sa.select(
        sa.select(_INSERTED.c.tweet_id).scalar_subquery(),
        sa.select(sa.func.count()).select_from(_RECORDED).scalar_subquery(),
        sa.select(sa.func.count()).select_from(_FENCE).scalar_subquery(),
    )
)
_BY_KEY = RawStatement(
    sa.select(tweets.c.tweet_id, tweets.c.text, tweets.c.created_at).where(
        tweets.c.author_id == sa.bindparam("author_id", type_=UUID(as_uuid=True)),
        tweets.c.idempotency_key == sa.bindparam("key", type_=UUID(as_uuid=True)),
    )
)


async def author(conn: asyncpg.Connection, author_id: uuid.UUID) -> tuple[str, int] | None:
    """The author's username and followers count; None when there is no such user."""
    row = await _AUTHOR.fetchrow(conn, author_id=author_id)
    return None if row is None else (row[0], row[1])


async def insert_with_event(
    conn: asyncpg.Connection,
    tweet_id: uuid.UUID,
    author_id: uuid.UUID,
    text: str,
    now: datetime,
    key: uuid.UUID | None,
    topic: str,
    payload: bytes,
) -> bool:
    """The tweet and its event, or neither: not when the author already used `key`. The
    unique constraint decides, so racing retries wait on each other inside PostgreSQL
    and exactly one insert wins. ShardMoved when a move took the author's shard."""
    row = await _PUBLISH.fetchrow(
        conn,
        logical=user_logical_shard(author_id),
        tweet_id=tweet_id,
        author_id=author_id,
        text=text,
        created_at=now,
        idempotency_key=key,
        topic=topic,
        key=str(author_id),
        payload=payload,
    )
    assert row is not None  # a SELECT of three scalars
    if not row[2]:
        raise ShardMoved([user_logical_shard(author_id)])
    return row[0] is not None


async def by_idempotency_key(
    conn: asyncpg.Connection, author_id: uuid.UUID, key: uuid.UUID
) -> tuple[uuid.UUID, str, datetime]:
    row = await _BY_KEY.fetchrow(conn, author_id=author_id, key=key)
    assert row is not None  # the conflict that sent us here is a committed row
    return uuid.UUID(bytes=row[0].bytes), row[1], row[2]


async def mark_deleted(conn: AsyncConnection, tweet_id: uuid.UUID, author_id: uuid.UUID) -> bool:
    await fence.hold(conn, [tweet_logical_shard(tweet_id)])
    stmt = (
        sa.update(tweets)
        .where(tweets.c.tweet_id == tweet_id, tweets.c.author_id == author_id, ~tweets.c.deleted)
        .values(deleted=True)
        .returning(tweets.c.tweet_id)
    )
    return (await conn.execute(stmt)).first() is not None


def listing(author_id: uuid.UUID, before: uuid.UUID | None, limit: int) -> sa.Select:
    """An author's live tweets, newest first. `NOT deleted`, not `deleted IS false`: only
    the former is the predicate of the index it walks (tweets_author_live)."""
    stmt = sa.select(*_ITEM).select_from(_JOINED).where(tweets.c.author_id == author_id, ~tweets.c.deleted)
    if before is not None:
        stmt = stmt.where(tweets.c.tweet_id < before)
    return stmt.order_by(tweets.c.tweet_id.desc()).limit(limit)


async def by_author(conn: AsyncConnection, author_id: uuid.UUID, before: uuid.UUID | None, limit: int) -> list[Tweet]:
    return [Tweet(*row) for row in await conn.execute(listing(author_id, before, limit))]


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


# The same items, for a plain asyncpg connection (a rebuild's first page).
_ITEMS_BY_IDS = RawStatement(
    sa.select(*_ITEM)
    .select_from(_JOINED)
    .where(tweets.c.tweet_id == sa.any_(sa.bindparam("ids", type_=sa.ARRAY(UUID(as_uuid=True)))), ~tweets.c.deleted)
)


async def items_by_ids(conn: asyncpg.Connection, tweet_ids: list[uuid.UUID]) -> list[Tweet]:
    return [Tweet(*row) for row in await _ITEMS_BY_IDS.fetch(conn, ids=tweet_ids)]


async def by_ids(conn: AsyncConnection, tweet_ids: list[uuid.UUID]) -> list[Tweet]:
    stmt = sa.select(*_ITEM).select_from(_JOINED).where(tweets.c.tweet_id.in_(tweet_ids), ~tweets.c.deleted)
    return [Tweet(*row) for row in await conn.execute(stmt)]
