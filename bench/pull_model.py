"""The pull model (fan-out on read) on the same data: each page computed from
PostgreSQL when it is asked for, served like the Timeline API (its route, framework,
server and gateway configuration) and answering byte for byte the same pages.

Per page: the caller's followees from `following` on the caller's shard; then, per
physical shard holding any of the authors (the caller and everyone they follow), one
query that walks each author's (author_id, tweet_id DESC) index for at most a page of
rows (a LATERAL join), keeps the newest, and joins the usernames; the shards' answers
are merged newest first. The same work the Users Service's internal recent-tweets
call does, in hand-written SQL on raw asyncpg so the pull model is not slowed by an ORM.
"""

from __future__ import annotations

import asyncio
import heapq
import os
import uuid

import asyncpg
import msgspec
from litestar import Litestar, get

from bench import config
from shared_schemas import heap
from shared_schemas.cursors import CursorCodec
from shared_schemas.ids import iso_ms
from shared_schemas.internal_api import TweetItem
from timeline.api import errors
from timeline.api.routes import timeline_route
from timeline.domain.refresh import after_page
from timeline.services.reader import Slice
from timeline.settings import Settings as TimelineSettings
from users.adapters import catalog
from users.domain.sharding import ShardMap

FOLLOWEES = "SELECT followee_id FROM following WHERE follower_id = $1"
_PAGE = """
SELECT t.tweet_id, t.author_id, u.username, t.text, t.created_at
FROM (
    SELECT x.tweet_id, x.author_id, x.text, x.created_at
    FROM unnest($1::uuid[]) AS a(id)
    CROSS JOIN LATERAL (
        SELECT tweet_id, author_id, text, created_at FROM tweets
        WHERE author_id = a.id AND NOT deleted {older}
        ORDER BY tweet_id DESC LIMIT $2
    ) x
    ORDER BY x.tweet_id DESC LIMIT $2
) t JOIN users u ON u.user_id = t.author_id
ORDER BY t.tweet_id DESC
"""
FIRST_PAGE = _PAGE.format(older="")
OLDER_PAGE = _PAGE.format(older="AND tweet_id < $3")

_encoder = msgspec.json.Encoder()


def create_app() -> Litestar:
    dsns = list(config.load().shard_dsns)
    cursors = CursorCodec(os.environ.get("TIMELINE_CURSOR_SECRET", "local-timeline-cursor-secret"))
    grace = TimelineSettings().stream_grace_seconds
    pools: dict[int, asyncpg.Pool] = {}  # database id -> pool

    async def start() -> None:
        # The databases and map of database 0's catalog, as the Users Service follows
        # them (a rebalance may have moved logical shards, even to databases
        # USERS_SHARD_DSNS does not name); read once: the bench moves no shard.
        found = await catalog.read_dsn(dsns[0])
        layout = found if found is not None else catalog.initial(dsns)
        reader.shards = layout.map
        for db, dsn in layout.dsns.items():
            pools[db] = await asyncpg.create_pool(catalog.plain_dsn(dsn), min_size=4, max_size=16)

    async def stop() -> None:
        for pool in pools.values():
            await pool.close()

    async def shard_page(index: int, authors: list[uuid.UUID], older: uuid.UUID | None, want: int) -> list:
        async with pools[index].acquire() as conn:
            if older is None:
                return await conn.fetch(FIRST_PAGE, authors, want)
            return await conn.fetch(OLDER_PAGE, authors, want, older)

    class PullReader:
        """The Timeline API's route (parameters, errors, the page's JSON) over pages
        computed on read: only where the page comes from differs."""

        shards: ShardMap  # the catalog's, set at startup

        async def page(self, user: uuid.UUID, older: uuid.UUID | None, size: int) -> Slice:
            want = size + 1
            async with pools[self.shards.for_user(user)].acquire() as conn:
                followees = [row[0] for row in await conn.fetch(FOLLOWEES, user)]
            groups: dict[int, list[uuid.UUID]] = {}
            for author in [user, *followees]:
                groups.setdefault(self.shards.for_user(author), []).append(author)
            parts = await asyncio.gather(*(shard_page(i, ids, older, want) for i, ids in groups.items()))
            rows = list(heapq.merge(*parts, key=lambda r: r[0], reverse=True))[:want]
            items = [
                _encoder.encode(
                    TweetItem(tweet_id=r[0], user_id=r[1], username=r[2], text=r[3], created_at=iso_ms(r[4]))
                )
                for r in rows[:size]
            ]
            newest = rows[0][0] if rows else None
            # Where a refresh goes on from, as the service's reader says it (the same
            # prev_cursor: bench/check.py compares the two services' pages byte for byte).
            refresh = after_page([r[0].bytes for r in rows[:size]], grace)
            return Slice(items, rows[size - 1][0] if len(rows) > size else None, newest, refresh)

    reader = PullReader()

    @get("/health")
    async def health() -> dict[str, str]:
        return {"status": "ok"}

    return Litestar(
        [timeline_route(reader, cursors), health],
        exception_handlers=errors.HANDLERS,
        on_startup=[start, heap.settle],
        on_shutdown=[stop],
        logging_config=None,
        openapi_config=None,
    )
