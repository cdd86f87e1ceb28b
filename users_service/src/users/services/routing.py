"""Writes that follow the shard map: a write a move fenced off reads the map again and
runs again on the database that now holds its shard (adapters/fence.py)."""

from __future__ import annotations

import asyncio
import functools
from collections.abc import Awaitable, Callable
from typing import Concatenate, ParamSpec, TypeVar

from users.adapters.db import ShardedDatabase
from users.domain.errors import ShardMoved

P = ParamSpec("P")
T = TypeVar("T")

# A move holds a shard's writes only for its final catch-up (milliseconds), and the map
# changes right after: the first retry nearly always lands. Past these pauses (about
# 2 s in all) the write gives up with 503; nothing was written.
PAUSES = (0.0, 0.05, 0.1, 0.25, 0.5, 1.0)


def follows_moves(
    write: Callable[Concatenate[ShardedDatabase, P], Awaitable[T]],
) -> Callable[Concatenate[ShardedDatabase, P], Awaitable[T]]:
    """`write` (one transaction, or safe to run again) retried on ShardMoved, with the
    map read again before each retry."""

    @functools.wraps(write)
    async def routed(db: ShardedDatabase, *args: P.args, **kwargs: P.kwargs) -> T:
        for pause in PAUSES:
            try:
                return await write(db, *args, **kwargs)
            except ShardMoved:
                await asyncio.sleep(pause)
                await db.refresh()
        return await write(db, *args, **kwargs)

    return routed
