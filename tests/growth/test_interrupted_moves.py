"""A move killed at each of its steps, under writes, then resumed or rolled back:
nothing accepted is lost, nothing is left where the map does not say, and writes only
ever wait (a 503 to retry) while a move is stopped between its hand-over and its flip.
The fault suite's stream runs through it too, from an author on a moving shard into
homes in Redis: the ring's own unfollows and follows backfill from PostgreSQL, which
would put back a tweet whose fan-out the move lost."""

from __future__ import annotations

import asyncio
import time
import uuid
from collections import Counter

import httpx
import pytest

from tests.faults.harness import Group
from tests.shards import Careful, Ring, Written, check_placement, check_written, layout, shards_cli
from tests.support import GATEWAY, eventually
from users.adapters.catalog import Layout
from users.domain.sharding import user_logical_shard

CRASHED = 70  # the exit status of a crash drill
GROUPS = 6  # groups made at most until one has an author on the moving database


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
        group = await _group_posting_from(http, found, source)
        grouped = [uuid.UUID(u) for u in [*group.authors, group.celebrity, *group.follows]]
        on_source += [u for u in grouped if found.map.for_user(u) == source]
        moving = sorted({user_logical_shard(member) for member in on_source})

        stop = asyncio.Event()
        lanes = [asyncio.create_task(ring.churn(stop, lane, 2, seed=lane)) for lane in range(2)]
        await eventually(lambda: written.at_least(5), timeout=30, what="the load to get going")
        stream = asyncio.create_task(group.stream(per_author=8, interval=0.2))  # into homes in Redis meanwhile
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
        await asyncio.gather(*lanes, stream)

        after = await check_placement(written)
        holder = target if then == "resume" else source
        assert {after.map.physical(logical) for logical in moving} == {holder}
        await check_written(http, written, ring)
        await group.converge(f"a move killed at {step}, then {then}", since=time.monotonic())
        await group.check_redis(rebuilt_allowed=False)
        if step == "source-released":  # their writes are refused until the flip: retried, never lost
            assert all(" 503 " in error and "moving" in error for error in written.server_errors), written.server_errors
        else:
            assert written.server_errors == [] and group.server_errors == 0, written.server_errors


async def _group_posting_from(http: httpx.AsyncClient, found: Layout, source: int) -> Group:
    """The fault suite's group, with one of its normal authors on `source` (each user
    lands on either database by their id: a few groups at most)."""
    for _ in range(GROUPS):
        group = await Group.make(http)
        if any(found.map.for_user(uuid.UUID(a)) == source for a in group.authors):
            return group
    raise AssertionError(f"none of {GROUPS} groups had an author on database {source}")


async def test_the_movers_sessions_are_probed_so_a_dead_host_frees_its_locks() -> None:
    # A host that dies sends no FIN: without the server's probes its sessions (the move
    # lock, a final round's relay lock and fence rows) would stay for two hours.
    # Checked as the session sees it; a real host loss needs a network this stack lacks.
    from users.settings import Settings
    from users.shards.mover import connect

    async with connect(Settings().shard_dsns[0]) as conn:
        assert await conn.fetchval("SELECT inet_client_addr() IS NOT NULL")  # TCP, where probes apply
        probes = [await conn.fetchval(f"SHOW {name}") for name in ("tcp_keepalives_idle", "tcp_keepalives_interval")]
        count = await conn.fetchval("SHOW tcp_keepalives_count")
    assert probes == ["30", "10"] and count == "3", (probes, count)  # seconds; the kernel's: 7200, 75, 9
