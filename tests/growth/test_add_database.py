"""Growing the fleet under load: a database added and the logical shards rebalanced onto
it while users sign up, follow, unfollow, post and read, and while the fault suite's
stream of tweets flows into homes in Redis. Every accepted write is in place
afterwards, no request got a 5xx, and the map says where every row is."""

from __future__ import annotations

import asyncio
import time

import httpx

from tests.faults.harness import Group
from tests.shards import Careful, Ring, Written, add_database_args, check_placement, check_written, layout, shards_cli
from tests.shards import spread as spread_of
from tests.support import GATEWAY, eventually


async def test_a_database_added_and_rebalanced_onto_while_everything_runs() -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        written = Written()
        ring = await Ring.make(Careful(http, written), 9)
        group = await Group.make(http)
        before = await layout()
        stop = asyncio.Event()
        lanes = [asyncio.create_task(ring.churn(stop, lane, 3, seed=lane)) for lane in range(3)]
        await eventually(lambda: written.at_least(10), timeout=30, what="the load to get going")

        added = await asyncio.to_thread(shards_cli, "add-database", *await add_database_args())
        assert added.returncode == 0, added.stdout + added.stderr
        started = time.monotonic()
        stream = asyncio.create_task(group.stream(per_author=8, interval=0.2))  # into homes in Redis meanwhile
        done = await asyncio.to_thread(shards_cli, "rebalance")
        assert done.returncode == 0, done.stdout + done.stderr
        print(f"[growth] rebalanced onto a new database in {time.monotonic() - started:.1f}s under load")
        more = written.tweet_count() + 10
        await eventually(lambda: written.at_least(more), timeout=30, what="the load to go on after the moves")

        stop.set()
        await asyncio.gather(*lanes, stream)
        after = await check_placement(written)
        assert len(after.dsns) == len(before.dsns) + 1
        spread = spread_of(after)
        assert set(spread) == set(after.dsns) and max(spread.values()) - min(spread.values()) <= 1, spread
        await check_written(http, written, ring)
        await group.converge("a database added and rebalanced onto", since=time.monotonic())
        await group.check_redis(rebuilt_allowed=False)
        assert written.server_errors == [] and group.server_errors == 0, written.server_errors
