"""A tweet's CPU in its two halves: the POST with its relay (the workers frozen, so
nothing is fanned out meanwhile), then the fan-out alone (the workers thawed, until
they have caught up). The writes test (bench/writes.py) measures them together; apart,
they say which half an aim for the whole can come from (docs/benchmarks.md, session 21).

The workers are frozen (SIGSTOP, deploy/local/stack.sh) rather than stopped: a stopped
worker's start-up would count against the fan-out, a frozen one only resumes (and,
frozen past its Kafka session, rejoins its group: a few milliseconds of CPU)."""

from __future__ import annotations

import asyncio
import subprocess
import time

import asyncpg
import numpy as np

from bench import cpu, fanout, writes
from bench.config import ROOT, Config
from bench.graph import Graph
from bench.progress import say

_OUTBOX_WAIT = 60.0  # seconds: the relay publishes thousands of rows a second


def _workers(cfg: Config, verb: str) -> None:
    for i in range(1, cfg.worker_count + 1):
        subprocess.run(
            ["bash", str(ROOT / "deploy/local/stack.sh"), verb, f"worker-{i}"], check=True, capture_output=True
        )


async def _outbox_empty(cfg: Config) -> None:
    """Until the relay has published every written tweet (each database's outbox empty)."""
    deadline = time.monotonic() + _OUTBOX_WAIT
    for dsn in cfg.pg_dsns:
        conn = await asyncpg.connect(dsn)
        try:
            while await conn.fetchval("SELECT count(*) FROM outbox") and time.monotonic() < deadline:
                await asyncio.sleep(0.1)
        finally:
            await conn.close()


async def run(cfg: Config, graph: Graph, rng: np.random.Generator) -> dict:
    await fanout.wait_for_quiet(cfg)
    delivered = await fanout._metric(cfg, "timeline_fanout_deliveries_total")
    _workers(cfg, "freeze")
    try:
        before = cpu.snapshot()
        posted = writes.run(cfg, graph, rng).as_dict()
        await _outbox_empty(cfg)
        written = cpu.snapshot()
    finally:
        _workers(cfg, "thaw")
    await fanout.wait_for_quiet(cfg)
    fanned = cpu.snapshot()
    tweets = posted["requests"]
    deliveries = await fanout._metric(cfg, "timeline_fanout_deliveries_total") - delivered
    result = {
        "tweets": tweets,
        "rps": posted["rps"],
        "errors": posted["errors"],
        "deliveries_per_tweet": round(deliveries / max(1, tweets), 1),
        "post_cpu_us_per_tweet": cpu.per_request(before, written, tweets),
        "fanout_cpu_us_per_tweet": cpu.per_request(written, fanned, tweets),
    }
    say(
        f"tweet split: {tweets:,} POSTs at {posted['rps']:,.0f}/s with the fan-out frozen, "
        f"{result['deliveries_per_tweet']:g} deliveries a tweet after"
    )
    return result
