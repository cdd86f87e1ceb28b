"""Moving logical shards to another database while the system runs (docs/decisions/0003).

A move of logical shards L from database S to database T:
1. records itself in the catalog (shard_moves, phase "copying");
2. starts logging S's changes (a row trigger) and copies L's rows to T from one
   snapshot taken after that;
3. catches up: copies again every row of L changed since, round after round, while
   writes go on;
4. the final round, the only time L's writes wait: on S, takes the relay's lock (no
   batch in flight), then L's fence rows under an update lock (writes in flight
   finish, new ones wait); copies the last changes, hands L's unpublished events to
   T's outbox and gives T the fence rows (T commits); then deletes L's fence rows on
   S (S commits: the waiting writes find no fence, read the map and retry);
5. flips the map in the catalog (L -> T, version + 1): every process follows;
6. stops the log, waits the grace period for processes still on the old map, and
   deletes L's rows from S.

A crash anywhere loses nothing. Before T commits, S is untouched (T's partial copy is
cleared by a resume or a rollback). Between T's and S's commits, S still holds L (T's
copies are cleared again; events T's relay already published are published again by
S's, which the consumers absorb). After S commits, T holds everything and a resume
finishes the flip (L's writes are refused, 503, until it does). After the flip, a
resume finishes the clean-up.
"""

from __future__ import annotations

import asyncio
import os
import time
from collections.abc import Callable, Collection
from contextlib import asynccontextmanager

import asyncpg

from users.adapters import catalog
from users.shards import rows

# When a catch-up round found fewer changed rows of the moving shards than this, the
# next one is the final, fenced round: what it copies is what the writes wait for.
FINAL_ROUND_BELOW = 200
MAX_ROUNDS = 30
_RELAY_LOCK = 7314  # the relay's per-database lock (adapters/outbox_repo.py)
_MOVE_LOCK = 7315  # one move at a time, held on database 0 by the command

Say = Callable[[str], None]


class MoveError(Exception):
    """A move cannot start or go on: said to the operator, nothing half-done is left
    that `resume` or `rollback` cannot finish."""


def _drill(step: str) -> None:
    """Crash drills (tests): die here as a killed process would, nothing cleaned up."""
    if os.environ.get("USERS_SHARDS_CRASH_AT") == step:
        print(f"crash drill: dying after step {step!r}", flush=True)
        os._exit(70)


# A mover whose host dies (not its process: a killed process's sockets close) would
# leave sessions that PostgreSQL keeps for the kernel's two hours of keepalive silence:
# holding the move lock (no resume, no rollback) and, in a final round, the source's
# relay lock and fence rows (no event of that database published, the shard's writes
# waiting). The server probes the mover's connections instead: a dead one goes in about
# a minute. (Ignored on a Unix socket, where no host can die apart.)
KEEPALIVE = {"tcp_keepalives_idle": "30", "tcp_keepalives_interval": "10", "tcp_keepalives_count": "3"}


@asynccontextmanager
async def connect(dsn: str):
    conn = await asyncpg.connect(catalog.plain_dsn(dsn), server_settings=KEEPALIVE)
    try:
        yield conn
    finally:
        await conn.close()


class Mover:
    def __init__(self, control: asyncpg.Connection, layout: catalog.Layout, grace: float, say: Say) -> None:
        """`control`: a connection to database 0 holding the move lock."""
        self.control, self.layout, self.grace, self.say = control, layout, grace, say

    @classmethod
    @asynccontextmanager
    async def open(cls, catalog_dsn: str, grace: float, say: Say):
        async with connect(catalog_dsn) as control:
            if not await control.fetchval("SELECT pg_try_advisory_lock($1)", _MOVE_LOCK):
                raise MoveError("another move is running (it holds the move lock on database 0)")
            layout = await catalog.read(control)
            if layout is None:
                raise MoveError("no shard catalog: run the migrations first (python -m users.migrate)")
            yield cls(control, layout, grace, say)

    async def unfinished(self) -> asyncpg.Record | None:
        return await self.control.fetchrow(
            "SELECT id, logicals, source, target, phase FROM shard_moves WHERE phase IN ('copying', 'flipped') "
            "ORDER BY id LIMIT 1"
        )

    # --- starting ------------------------------------------------------------------

    async def move(self, logicals: Collection[int], target: int) -> None:
        """Move `logicals` to database `target`, one source database at a time."""
        if target not in self.layout.dsns:
            raise MoveError(f"no database {target}; the catalog has {sorted(self.layout.dsns)}")
        if await self.unfinished() is not None:
            raise MoveError("a move was interrupted: run `resume` or `rollback` first")
        by_source: dict[int, list[int]] = {}
        for logical in sorted(set(logicals)):
            owner = self.layout.map.physical(logical)
            if owner != target:
                by_source.setdefault(owner, []).append(logical)
        if not by_source:
            self.say(f"nothing to move: database {target} already holds those logical shards")
        for source, part in sorted(by_source.items()):
            move_id = await self.control.fetchval(
                "INSERT INTO shard_moves (logicals, source, target, phase) VALUES ($1, $2, $3, 'copying') RETURNING id",
                part,
                source,
                target,
            )
            await self._run(move_id, part, source, target)

    # --- the steps -----------------------------------------------------------------

    async def _run(self, move_id: int, logicals: list[int], source_id: int, target_id: int) -> None:
        self.say(f"move {move_id}: {len(logicals)} logical shards from database {source_id} to {target_id}")
        async with connect(self.layout.dsns[source_id]) as source, connect(self.layout.dsns[target_id]) as target:
            taken = await target.fetchval(
                "SELECT count(*) FROM shard_fence WHERE logical = ANY($1::smallint[])", logicals
            )
            if taken:
                raise MoveError(f"database {target_id} already holds {taken} of those logical shards")
            await rows.start_logging(source)
            cleared = await rows.delete_owned(target, await rows.owned(target, logicals))
            if cleared:
                self.say(f"move {move_id}: cleared {cleared} rows an earlier attempt left on the target")
            started = time.perf_counter()
            async with source.transaction(isolation="repeatable_read", readonly=True):
                owners = await rows.owned(source, logicals)
                self.say(f"move {move_id}: copying {len(owners.user_ids)} users and everything theirs")
                await rows.copy_owned(source, target, owners, lambda line: self.say(f"move {move_id}: {line}"))
            self.say(f"move {move_id}: copied in {time.perf_counter() - started:.1f}s")
            _drill("copied")
            await self._catch_up(move_id, source, target, logicals)
            blocked_ms = await self._final_round(move_id, source, target, logicals, source_id)
        await self._flip(move_id, logicals, target_id, blocked_ms)
        await self._clean_up(move_id, logicals, source_id)

    async def _catch_up(
        self, move_id: int, source: asyncpg.Connection, target: asyncpg.Connection, logicals: list[int]
    ) -> None:
        for round_ in range(1, MAX_ROUNDS + 1):
            async with source.transaction():
                changes = await rows.take_changes(source, logicals)
                async with target.transaction():
                    await rows.resync(source, target, changes)
            self.say(f"move {move_id}: catch-up round {round_}: {changes.changed} changed rows copied again")
            if changes.changed < FINAL_ROUND_BELOW:
                return
        raise MoveError(
            f"the moving shards still change {changes.changed} rows a round after {MAX_ROUNDS} rounds: "
            "`resume` tries again (at a quieter time), `rollback` gives up"
        )

    async def _final_round(
        self, move_id: int, source: asyncpg.Connection, target: asyncpg.Connection, logicals: list[int], source_id: int
    ) -> float:
        """Writes of `logicals` wait from the fence lock to the source's commit."""
        async with source.transaction():
            # No relay batch of the source in flight: its events are handed over whole.
            await source.execute("SELECT pg_advisory_xact_lock($1)", _RELAY_LOCK)
            started = time.perf_counter()
            held = await source.fetch(
                "SELECT logical FROM shard_fence WHERE logical = ANY($1::smallint[]) ORDER BY logical FOR UPDATE",
                logicals,
            )
            if len(held) != len(logicals):
                raise MoveError(f"database {source_id} no longer holds all of those logical shards")
            # The moving shards' writers all committed before the lock was ours: their
            # changes are all recorded by now.
            changes = await rows.take_changes(source, logicals)
            events = await rows.take_outbox(source, logicals)
            async with target.transaction():
                await rows.resync(source, target, changes)
                await rows.put_outbox(target, events)
                await target.executemany("INSERT INTO shard_fence (logical) VALUES ($1)", [(i,) for i in logicals])
            _drill("target-committed")
            await source.execute("DELETE FROM shard_fence WHERE logical = ANY($1::smallint[])", logicals)
        blocked_ms = (time.perf_counter() - started) * 1000
        self.say(
            f"move {move_id}: final round: {changes.changed} changed rows and {len(events)} unpublished events handed "
            f"over; the shards' writes waited {blocked_ms:.0f} ms"
        )
        _drill("source-released")
        return blocked_ms

    async def _flip(self, move_id: int, logicals: list[int], target_id: int, blocked_ms: float | None) -> None:
        async with self.control.transaction():
            await self.control.execute(
                "UPDATE shard_map SET database_id = $2 WHERE logical = ANY($1::smallint[])", logicals, target_id
            )
            version = await self.control.fetchval(
                "UPDATE shard_map_version SET version = version + 1 RETURNING version"
            )
            await self.control.execute(
                "UPDATE shard_moves SET phase = 'flipped', blocked_ms = coalesce($2, blocked_ms), updated_at = now() "
                "WHERE id = $1",
                move_id,
                blocked_ms,
            )
        self.layout = await catalog.read(self.control) or self.layout
        self.say(f"move {move_id}: the map now sends those shards to database {target_id} (version {version})")
        _drill("flipped")

    async def _clean_up(self, move_id: int, logicals: list[int], source_id: int) -> None:
        async with connect(self.layout.dsns[source_id]) as source:
            await rows.stop_logging(source)
            self.say(f"move {move_id}: waiting {self.grace:g}s for every process to read the new map")
            await asyncio.sleep(self.grace)
            deleted = await rows.delete_owned(source, await rows.owned(source, logicals))
        await self.control.execute("UPDATE shard_moves SET phase = 'done', updated_at = now() WHERE id = $1", move_id)
        self.say(f"move {move_id}: done; {deleted} rows deleted from database {source_id}")

    # --- after a crash -------------------------------------------------------------

    async def _state(self, move: asyncpg.Record) -> str:
        """Where an unfinished move stopped, from the databases' own fences."""
        if move["phase"] == "flipped":
            return "flipped"
        logicals = list(move["logicals"])
        async with connect(self.layout.dsns[move["source"]]) as source:
            at_source = await source.fetchval(
                "SELECT count(*) FROM shard_fence WHERE logical = ANY($1::smallint[])", logicals
            )
        return "released" if at_source == 0 else "copying"

    async def resume(self) -> None:
        move = await self.unfinished()
        if move is None:
            self.say("no unfinished move")
            return
        move_id, logicals, source, target = move["id"], list(move["logicals"]), move["source"], move["target"]
        state = await self._state(move)
        self.say(f"move {move_id}: resuming ({state})")
        if state == "copying":
            await self._undo_target(move_id, logicals, target)
            await self._run(move_id, logicals, source, target)
            return
        if state == "released":
            await self._flip(move_id, logicals, target, None)
        await self._clean_up(move_id, logicals, source)

    async def rollback(self) -> None:
        move = await self.unfinished()
        if move is None:
            self.say("no unfinished move")
            return
        move_id = move["id"]
        if await self._state(move) != "copying":
            raise MoveError(
                f"move {move_id} already handed its shards to database {move['target']}: `resume` finishes it "
                "(a move back is a new move)"
            )
        await self._undo_target(move_id, list(move["logicals"]), move["target"])
        async with connect(self.layout.dsns[move["source"]]) as source:
            await rows.stop_logging(source)
        await self.control.execute(
            "UPDATE shard_moves SET phase = 'rolled_back', updated_at = now() WHERE id = $1", move_id
        )
        self.say(f"move {move_id}: rolled back; database {move['source']} holds its shards as before")

    async def _undo_target(self, move_id: int, logicals: list[int], target_id: int) -> None:
        """Clear what an unfinished move left on its target: the copies, the fence rows,
        the handed-over events (the source still holds them all)."""
        async with connect(self.layout.dsns[target_id]) as target, target.transaction():
            await target.execute("DELETE FROM shard_fence WHERE logical = ANY($1::smallint[])", logicals)
            dropped = await rows.drop_outbox(target, logicals)
            deleted = await rows.delete_owned(target, await rows.owned(target, logicals))
        self.say(f"move {move_id}: cleared {deleted} copied rows and {dropped} events from database {target_id}")
