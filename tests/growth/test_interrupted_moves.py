"""A move killed at each of its steps, under writes, then resumed or rolled back:
nothing accepted is lost, nothing is left where the map does not say, and writes only
ever wait (a 503 to retry) while a move is stopped between its hand-over and its flip."""

from __future__ import annotations

import asyncio
import uuid
from collections import Counter

import httpx
import pytest

from tests.shards import Careful, Ring, Written, check_placement, check_written, layout, shards_cli
from tests.support import GATEWAY, eventually
from users.domain.sharding import user_logical_shard

CRASHED = 70  # the exit status of a crash drill


@pytest.mark.parametrize(
    ("step", "then"),
    [
        ("copied", "rollback"),
        ("copied", "resume"),
        ("target-committed", "rollback"),
        ("target-committed", "resume"),
        ("source-released", "resume"),
        ("flipped", "resume"),
    ],
)
async def test_a_move_killed_at_a_step_loses_nothing(step: str, then: str) -> None:
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        written = Written()
        ring = await Ring.make(Careful(http, written), 6)
        found = await layout()
        homes = Counter(found.map.for_user(uuid.UUID(m)) for m in ring.members)
        source = homes.most_common(1)[0][0]
        target = min(db for db in found.dsns if db != source)
        on_source = [uuid.UUID(m) for m in ring.members if found.map.for_user(uuid.UUID(m)) == source]
        moving = sorted({user_logical_shard(member) for member in on_source})

        stop = asyncio.Event()
        lanes = [asyncio.create_task(ring.churn(stop, lane, 2, seed=lane)) for lane in range(2)]
        await eventually(lambda: written.at_least(5), timeout=30, what="the load to get going")
        logicals = ",".join(map(str, moving))
        crashed = await asyncio.to_thread(shards_cli, "move", logicals, "--to", str(target), crash_at=step)
        assert crashed.returncode == CRASHED, crashed.stdout + crashed.stderr
        status = await asyncio.to_thread(shards_cli, "status")
        assert status.returncode == 0 and ("copying" in status.stdout or "flipped" in status.stdout)
        if step == "source-released":  # nobody holds the shards by the map: their writes are refused
            refused = await http.post(
                "/api/v1/tweet", headers={"X-User-ID": str(on_source[0])}, json={"text": "while nobody holds it"}
            )
            assert refused.status_code == 503 and "moving" in refused.json()["detail"], refused.text
            assert refused.headers["Retry-After"] == "1"
        else:
            more = written.tweet_count() + 3
            await eventually(lambda: written.at_least(more), timeout=30, what="writes after the crash")
        finished = await asyncio.to_thread(shards_cli, then)
        assert finished.returncode == 0, finished.stdout + finished.stderr
        stop.set()
        await asyncio.gather(*lanes)

        after = await check_placement(written)
        holder = target if then == "resume" else source
        assert {after.map.physical(logical) for logical in moving} == {holder}
        await check_written(http, written, ring)
        if step == "source-released":  # their writes are refused until the flip: retried, never lost
            assert all(" 503 " in error and "moving" in error for error in written.server_errors), written.server_errors
        else:
            assert written.server_errors == []
