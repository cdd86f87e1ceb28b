"""A process that has not read the map since a move (its refresh is a second away, or
database 0 was briefly out of reach) never answers from the database the move left:
its reads find the shard gone there, read the map again and read where it went."""

from __future__ import annotations

import asyncio
import uuid

import httpx

from tests.shards import Careful, Written, layout, shards_cli
from tests.support import GATEWAY
from users.adapters.db import ShardedDatabase
from users.domain.sharding import user_logical_shard
from users.services import accounts, graph_reads
from users.settings import Settings


async def _stale() -> ShardedDatabase:
    db = ShardedDatabase(Settings())
    await db.refresh()  # and never again by itself: no watch runs in a test
    return db


async def test_reads_on_an_old_map_follow_the_move_instead_of_answering_none() -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        client = Careful(http, Written())
        user, follower = uuid.UUID(await client.user()), await client.user()
        await client.follow(follower, str(user))
    profile_reader, walker = await _stale(), await _stale()
    try:
        found = await layout()
        logical, source = user_logical_shard(user), found.map.for_user(user)
        target = min(db for db in found.dsns if db != source)
        # A grace shorter than any refresh: the rows are gone from the source at once.
        moved = await asyncio.to_thread(shards_cli, "move", str(logical), "--to", str(target), grace=0.1)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert profile_reader.map.physical(logical) == walker.map.physical(logical) == source  # both behind

        # The public read: "no such user" from the old database would be a 404.
        assert (await accounts.get_user(profile_reader, user)).user_id == user
        # An internal read (a tweet's fan-out walk): no follower from the old database
        # would be a tweet that never reaches its follower's home.

        async def walk() -> list[uuid.UUID]:
            for _ in range(100):  # the follow's second half is written by the relay
                page = await graph_reads.followers_page(walker, user, None, 10)
                if page:
                    return page
                await asyncio.sleep(0.1)
            return []

        assert await walk() == [uuid.UUID(follower)]
        assert profile_reader.map.physical(logical) == walker.map.physical(logical) == target
    finally:
        await profile_reader.dispose()
        await walker.dispose()
