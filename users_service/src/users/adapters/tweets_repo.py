"""SQL for tweets, on their author's shard."""

from __future__ import annotations

import uuid
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.dialects.postgresql import UUID, insert
from sqlalchemy.ext.asyncio import AsyncConnection

from users.adapters.tables import tweets, users
from users.domain.model import Tweet

_ITEM = (tweets.c.tweet_id, tweets.c.author_id, users.c.username, tweets.c.text, tweets.c.created_at)
_JOINED = tweets.join(users, users.c.user_id == tweets.c.author_id)


# A POST's first two statements in one round trip: the author's row, and the insert,
# which selects from it (so a missing author inserts nothing). Built once and run with
# bind parameters: building a statement cost as much CPU as running it
# (docs/decisions/0011).
_AUTHOR = (
    sa.select(users.c.user_id, users.c.username, users.c.followers_count)
    .where(users.c.user_id == sa.bindparam("author_id", type_=UUID(as_uuid=True)))
    .cte("author")
)
_INSERTED = (
    insert(tweets)
    .from_select(
        ["tweet_id", "author_id", "text", "created_at", "idempotency_key"],
        sa.select(
            sa.bindparam("tweet_id", type_=UUID(as_uuid=True)),
            _AUTHOR.c.user_id,
            sa.bindparam("text", type_=sa.Text),
            sa.bindparam("created_at", type_=sa.DateTime(timezone=True)),
            sa.bindparam("idempotency_key", type_=UUID(as_uuid=True)),
        ),
    )
    .on_conflict_do_nothing(index_elements=["author_id", "idempotency_key"])
    .returning(tweets.c.tweet_id)
    .cte("inserted")
)
_PUBLISH = sa.select(_AUTHOR.c.username, _AUTHOR.c.followers_count, sa.select(_INSERTED.c.tweet_id).scalar_subquery())


async def insert_for_author(
    conn: AsyncConnection, tweet_id: uuid.UUID, author_id: uuid.UUID, text: str, now: datetime, key: uuid.UUID | None
) -> tuple[str, int, bool] | None:
    """The author's username and followers count, and whether the tweet went in; None
    when there is no such author. Not in when the author already used `key`: the unique
    constraint decides, so racing retries wait on each other inside PostgreSQL and
    exactly one insert wins."""
    params = {"tweet_id": tweet_id, "author_id": author_id, "text": text, "created_at": now, "idempotency_key": key}
    row = (await conn.execute(_PUBLISH, params)).first()
    return None if row is None else (row[0], row[1], row[2] is not None)


async def by_idempotency_key(
    conn: AsyncConnection, author_id: uuid.UUID, key: uuid.UUID
) -> tuple[uuid.UUID, str, datetime]:
    stmt = sa.select(tweets.c.tweet_id, tweets.c.text, tweets.c.created_at).where(
        tweets.c.author_id == author_id, tweets.c.idempotency_key == key
    )
    return tuple((await conn.execute(stmt)).one())


async def mark_deleted(conn: AsyncConnection, tweet_id: uuid.UUID, author_id: uuid.UUID) -> bool:
    stmt = (
        sa.update(tweets)
        .where(tweets.c.tweet_id == tweet_id, tweets.c.author_id == author_id, tweets.c.deleted.is_(False))
        .values(deleted=True)
        .returning(tweets.c.tweet_id)
    )
    return (await conn.execute(stmt)).first() is not None


async def by_author(conn: AsyncConnection, author_id: uuid.UUID, before: uuid.UUID | None, limit: int) -> list[Tweet]:
    stmt = sa.select(*_ITEM).select_from(_JOINED).where(tweets.c.author_id == author_id, tweets.c.deleted.is_(False))
    if before is not None:
        stmt = stmt.where(tweets.c.tweet_id < before)
    stmt = stmt.order_by(tweets.c.tweet_id.desc()).limit(limit)
    return [Tweet(*row) for row in await conn.execute(stmt)]


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
        .where(tweets.c.author_id == authors.c.id, tweets.c.deleted.is_(False))
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
    stmt = sa.select(*_ITEM).select_from(_JOINED).where(tweets.c.tweet_id.in_(tweet_ids), tweets.c.deleted.is_(False))
    return [Tweet(*row) for row in await conn.execute(stmt)]
