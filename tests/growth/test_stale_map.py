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
from users.services import tweets as tweet_service
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
        posted = uuid.UUID(await client.tweet(str(user), "before the move"))
    stale = profile_reader, lister, deleter, walker, author = [await _stale() for _ in range(5)]
    try:
        found = await layout()
        logical, source = user_logical_shard(user), found.map.for_user(user)
        target = min(db for db in found.dsns if db != source)
        # A grace shorter than any refresh: the rows are gone from the source at once.
        moved = await asyncio.to_thread(shards_cli, "move", str(logical), "--to", str(target), grace=0.1)
        assert moved.returncode == 0, moved.stdout + moved.stderr
        assert {reader.map.physical(logical) for reader in stale} == {source}  # all behind

        # The public read: "no such user" from the old database would be a 404.
        assert (await accounts.get_user(profile_reader, user)).user_id == user
        # The public listing asks for the user and their tweets in one statement, which
        # reads the shard's fence too: an empty answer there would be a 404 as well.
        assert [t.tweet_id for t in await tweet_service.list_by_author(lister, user, None, 10)] == [posted]
        # A write that finds nothing there (a deletion: its statement holds the fence) is
        # not a 404 either, and the tweet it deletes is gone where it went.
        await tweet_service.delete(deleter, user, posted)
        assert await tweet_service.list_by_author(lister, user, None, 10) == []
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
        # A tweet: its author looked up on the old database, where no such user is any
        # more, would be a 404 for a user who exists (a pod whose map is a second old).
        again = await tweet_service.publish(author, user, "after the move", None)
        assert [t.tweet_id for t in await tweet_service.list_by_author(lister, user, None, 10)] == [again.tweet_id]
        assert {reader.map.physical(logical) for reader in stale} == {target}
    finally:
        for reader in stale:
            await reader.dispose()
