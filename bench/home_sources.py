"""What a rebuild batch costs: `POST /internal/home-sources` called directly, with
batches of fixed sizes, CPU per home by kind of process (docs/benchmarks.md, "what a
rebuild batch costs"). A cold start's rebuilds reach the Users API in batches (one a
Timeline API process at a time), and each call asks each database questions whatever
its size: this separates the cost of a call from the cost of a home, which whole
cold-read runs (bench/coldstart.py) measure only together, inside the machine's noise.

Run on a loaded stack (`make run`, then `make bench` once):
`bench/run.sh bench.home_sources`. BENCH_HOME_SOURCE_BATCHES (1,8,24) are the batch
sizes, BENCH_HOME_SOURCE_HOMES (3,000) the homes asked at each, by 4 callers at once,
BENCH_HOME_SOURCE_LIMIT (TIMELINE_MAX_ITEMS) the ids a home holds.
"""

from __future__ import annotations

import asyncio
import os
import random
import time

import asyncpg
import httpx

from bench import cpu
from bench.config import Config
from bench.progress import say

CALLERS = 4
WARM_HOMES = 200  # each size's first calls: pooled connections and backends made outside the figures


async def user_ids(cfg: Config) -> list[str]:
    ids: list[str] = []
    for dsn in cfg.pg_dsns:
        conn = await asyncpg.connect(dsn)
        try:
            ids += [str(row[0]) for row in await conn.fetch("SELECT user_id FROM users")]
        finally:
            await conn.close()
    return ids


async def _ask(http: httpx.AsyncClient, url: str, batches: list[list[str]], threshold: int, limit: int) -> None:
    """The batches, `CALLERS` calls at a time."""
    waiting = list(reversed(batches))

    async def caller() -> None:
        while waiting:
            homes = [{"user_id": user, "items": 21} for user in waiting.pop()]
            response = await http.post(url, json={"homes": homes, "threshold": threshold, "limit": limit})
            response.raise_for_status()

    await asyncio.gather(*(caller() for _ in range(CALLERS)))


async def run(cfg: Config, sizes: list[int], homes: int, limit: int) -> list[dict]:
    users = await user_ids(cfg)
    url = f"http://127.0.0.1:{cfg.users_api_port}/internal/home-sources"
    rows = []
    async with httpx.AsyncClient(timeout=30, limits=httpx.Limits(max_connections=CALLERS)) as http:
        for size in sizes:
            picked = random.sample(users, min(len(users), homes + WARM_HOMES))
            batches = [picked[i : i + size] for i in range(0, len(picked), size)]
            warm = max(1, WARM_HOMES // size)
            await _ask(http, url, batches[:warm], cfg.threshold, limit)
            measured = batches[warm:]
            asked = sum(len(batch) for batch in measured)
            before, started = cpu.snapshot(), time.monotonic()
            await _ask(http, url, measured, cfg.threshold, limit)
            took = time.monotonic() - started
            per_home = cpu.per_request(before, cpu.snapshot(), asked) or {}
            row = {"batch": size, "homes_per_second": round(asked / took), **per_home}
            say(
                f"batches of {size}: {row['homes_per_second']:,} homes/s at {CALLERS} calls at once; µs a home: "
                f"Users API {per_home.get('users_api', 0):,.0f}, PostgreSQL {per_home.get('postgres', 0):,.0f}, "
                f"all {per_home.get('total', 0):,.0f}"
            )
            rows.append(row)
    return rows


def main() -> None:
    sizes = [int(s) for s in os.environ.get("BENCH_HOME_SOURCE_BATCHES", "1,8,24").split(",")]
    homes = int(os.environ.get("BENCH_HOME_SOURCE_HOMES", "3000"))
    cfg = Config()
    limit = int(os.environ.get("BENCH_HOME_SOURCE_LIMIT", str(cfg.max_items)))
    asyncio.run(run(cfg, sizes, homes, limit))


if __name__ == "__main__":
    main()
