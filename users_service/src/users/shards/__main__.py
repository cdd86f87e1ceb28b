"""Grow the fleet: `python -m users.shards status | add-database | move | rebalance |
resume | rollback` (`make shards ARGS="..."`; docs/decisions/0003, README "How it scales").

    status                          the map's version, each database's logical shards and rows
    add-database DSN [--create] [--replica DSN]   migrate a new database, register it (holding nothing yet)
    move LOGICAL... --to DB         move logical shards (numbers or ranges like 0-63) to database DB
    rebalance                       spread the logical shards evenly, moving the fewest
    resume | rollback               finish, or undo, a move that was interrupted
"""

from __future__ import annotations

import argparse
import asyncio
import sys
import time
from collections import Counter

import asyncpg
from sqlalchemy.engine import make_url

from users import settings as settings_module
from users.adapters import catalog
from users.domain.sharding import LOGICAL_SHARDS, rebalance
from users.migrate import migrate_database
from users.shards import rows
from users.shards.mover import MoveError, Mover, connect

_started = time.monotonic()


def say(line: str) -> None:
    print(f"[shards {time.monotonic() - _started:6.1f}s] {line}", flush=True)


def _ranges(logicals: list[int]) -> str:
    spans: list[list[int]] = []
    for logical in sorted(logicals):
        if spans and spans[-1][1] == logical - 1:
            spans[-1][1] = logical
        else:
            spans.append([logical, logical])
    return ", ".join(f"{a}-{b}" if a != b else f"{a}" for a, b in spans) or "none"


def _logicals(specs: list[str]) -> list[int]:
    found: set[int] = set()
    for spec in specs:
        for part in spec.split(","):
            low, _, high = part.partition("-")
            first, last = int(low), int(high or low)
            if not 0 <= first <= last < LOGICAL_SHARDS:
                raise MoveError(f"logical shards are 0 to {LOGICAL_SHARDS - 1}; got {part!r}")
            found.update(range(first, last + 1))
    return sorted(found)


def _safe(dsn: str) -> str:
    return make_url(dsn).render_as_string(hide_password=True)


async def status(settings: settings_module.Settings) -> None:
    layout = await catalog.read_dsn(settings.shard_dsns[0])
    if layout is None:
        raise MoveError("no shard catalog: run the migrations first (python -m users.migrate)")
    held = Counter(layout.map.owners)
    print(f"shard map version {layout.map.version}: {LOGICAL_SHARDS} logical shards over {len(layout.dsns)} databases")
    for db, dsn in sorted(layout.dsns.items()):
        async with connect(dsn) as conn:
            counts = {t.name: await conn.fetchval(f"SELECT count(*) FROM {t.name}") for t in rows.KEYED}
            counts["outbox"] = await conn.fetchval("SELECT count(*) FROM outbox")
            fenced = await conn.fetchval("SELECT count(*) FROM shard_fence")
        replica = layout.replicas.get(db)
        print(f"database {db} {_safe(dsn)}" + (f" (replica {_safe(replica)})" if replica else ""))
        print(f"  logical shards: {held.get(db, 0)} ({_ranges(layout.map.logicals_of(db))}); fence holds {fenced}")
        print("  rows: " + ", ".join(f"{name} {count}" for name, count in counts.items()))
    async with connect(settings.shard_dsns[0]) as conn:
        moves = await conn.fetch(
            "SELECT id, source, target, cardinality(logicals) AS n, phase, blocked_ms, updated_at "
            "FROM shard_moves ORDER BY id DESC LIMIT 10"
        )
    for move in moves:
        blocked = f", writes waited {move['blocked_ms']:.0f} ms" if move["blocked_ms"] is not None else ""
        print(
            f"move {move['id']}: {move['n']} shards {move['source']} -> {move['target']}: {move['phase']}{blocked} "
            f"({move['updated_at']:%Y-%m-%d %H:%M:%S})"
        )


async def add_database(settings: settings_module.Settings, dsn: str, create: bool, replica: str | None) -> None:
    layout = await catalog.read_dsn(settings.shard_dsns[0])
    if layout is None:
        raise MoveError("no shard catalog: run the migrations first (python -m users.migrate)")
    if dsn in layout.dsns.values():
        say(f"database {_safe(dsn)} is registered already")
        return
    if create:
        url = make_url(dsn)
        async with connect(url.set(database="postgres").render_as_string(hide_password=False)) as server:
            if not await server.fetchval("SELECT 1 FROM pg_database WHERE datname = $1", url.database):
                await server.execute(f'CREATE DATABASE "{url.database}"')
                say(f"created database {url.database}")
    new_id = max(layout.dsns) + 1
    say(f"migrating database {new_id} ({_safe(dsn)})")
    await asyncio.to_thread(
        migrate_database, catalog.Layout(layout.map, {**layout.dsns, new_id: dsn}, layout.replicas), new_id
    )
    async with connect(settings.shard_dsns[0]) as conn, conn.transaction():
        await conn.execute(
            "INSERT INTO shard_databases (id, dsn, replica_dsn) VALUES ($1, $2, $3)", new_id, dsn, replica
        )
        await conn.execute("UPDATE shard_map_version SET version = version + 1")
    say(f"database {new_id} registered; it holds no logical shard yet (next: rebalance, or move ... --to {new_id})")


async def run(args: argparse.Namespace) -> None:
    settings = settings_module.load()
    if args.command == "status":
        await status(settings)
        return
    if args.command == "add-database":
        await add_database(settings, args.dsn, args.create, args.replica)
        return
    async with Mover.open(settings.shard_dsns[0], settings.shard_move_grace_seconds, say) as mover:
        if args.command == "move":
            await mover.move(_logicals(args.logicals), args.to)
        elif args.command == "rebalance":
            plan = rebalance(mover.layout.map.owners, mover.layout.dsns)
            if not plan:
                say("already even: nothing to move")
            for step in plan:
                say(f"plan: {len(step.logicals)} logical shards {step.source} -> {step.target}")
            for step in plan:
                await mover.move(step.logicals, step.target)
        elif args.command == "resume":
            await mover.resume()
        elif args.command == "rollback":
            await mover.rollback()


def main() -> None:
    parser = argparse.ArgumentParser(prog="python -m users.shards", description=__doc__.split("\n\n")[0])
    commands = parser.add_subparsers(dest="command", required=True)
    commands.add_parser("status", help="the map's version, each database's logical shards and rows")
    add = commands.add_parser("add-database", help="migrate a new database and register it")
    add.add_argument("dsn", help="postgresql+asyncpg://user@host:port/name")
    add.add_argument("--create", action="store_true", help="CREATE DATABASE first if it does not exist")
    add.add_argument("--replica", help="its streaming replica's URL, for the internal reads (default: none)")
    move = commands.add_parser("move", help="move logical shards to a database")
    move.add_argument("logicals", nargs="+", help="logical shards: 7, 0-63, 5,9,12-15")
    move.add_argument("--to", type=int, required=True, help="the target database id")
    commands.add_parser("rebalance", help="spread the logical shards evenly over every database")
    commands.add_parser("resume", help="finish a move that was interrupted")
    commands.add_parser("rollback", help="undo a move that was interrupted before its hand-over")
    args = parser.parse_args()
    try:
        asyncio.run(run(args))
    except (MoveError, asyncpg.PostgresError, OSError) as exc:
        say(f"error: {exc}")
        sys.exit(1)


if __name__ == "__main__":
    main()
