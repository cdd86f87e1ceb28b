"""A tweet's CPU in its two halves: the POST with its relay (the workers frozen, so
nothing is fanned out meanwhile), then the fan-out alone (the workers thawed, until
they have caught up). The writes test (bench/writes.py) measures them together; apart,
they say what each half costs by process (docs/benchmarks.md, "A tweet in two
halves"). Each runs with its own batching (the POSTs alone go faster, the fan-out works
through a backlog) and carries the idle stack for its own waits, so their sum is not
the whole's.

The workers are frozen (SIGSTOP, deploy/local/stack.sh) rather than stopped: a stopped
worker's start-up would count against the fan-out, a frozen one only resumes (and,
frozen past its Kafka session, rejoins its group, which costs little). They are
frozen only once quiet, with every batch committed, so nothing is applied twice."""

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

_OUTBOX_WAIT = 60.0  # seconds: many times what the relay needs (its pace: docs/benchmarks.md, "Writes")
_CATCH_UP_WAIT = 300.0  # seconds: many times what the workers need (their rate: docs/benchmarks.md, "Fan-out")


def _worker(verb: str, index: int) -> None:
    done = subprocess.run(
        ["bash", str(ROOT / "deploy/local/stack.sh"), verb, f"worker-{index}"], capture_output=True, text=True
    )
    if done.returncode:
        raise RuntimeError(f"stack.sh {verb} worker-{index}: {done.stderr.strip()[-500:]}")


async def _outbox_empty(cfg: Config) -> None:
    """Until the relay has published every written tweet (each database's outbox empty:
    rows go once Kafka has them), or the measurement is refused."""
    deadline = time.monotonic() + _OUTBOX_WAIT
    for dsn in cfg.pg_dsns:
        conn = await asyncpg.connect(dsn)
        try:
            while left := await conn.fetchval("SELECT count(*) FROM outbox"):
                if time.monotonic() > deadline:
                    raise RuntimeError(f"the relay left {left} outbox rows unpublished after {_OUTBOX_WAIT:.0f}s")
                await asyncio.sleep(0.1)
        finally:
            await conn.close()


async def _caught_up(cfg: Config, applied_before: float, events: int) -> None:
    """Until the thawed workers have applied the written tweets' events, then until they
    are quiet. Their lag gauge still reads as it did when they were frozen (it is as
    fresh as their last fetch), and while they rejoin their group it reads nothing: on
    its own it would call them quiet before they began."""
    deadline = time.monotonic() + _CATCH_UP_WAIT
    while await fanout._metric(cfg, "timeline_events_total") - applied_before < events:
        if time.monotonic() > deadline:
            raise RuntimeError(f"the workers did not apply {events} events in {_CATCH_UP_WAIT:.0f}s")
        await asyncio.sleep(0.2)
    await fanout.wait_for_quiet(cfg)


async def run(cfg: Config, graph: Graph, rng: np.random.Generator) -> dict:
    await fanout.wait_for_quiet(cfg)
    delivered = await fanout._metric(cfg, "timeline_fanout_deliveries_total")
    applied = await fanout._metric(cfg, "timeline_events_total")
    frozen: list[int] = []
    try:
        for index in range(1, cfg.worker_count + 1):
            _worker("freeze", index)
            frozen.append(index)
        before = cpu.snapshot()
        posted = writes.run(cfg, graph, rng).as_dict()
        await _outbox_empty(cfg)
        written = cpu.snapshot()
    finally:
        failed = []
        for index in frozen:  # every one, whatever failed before or here
            try:
                _worker("thaw", index)
            except RuntimeError as exc:
                failed.append(exc)
        if failed:
            raise failed[0]
    tweets = posted["requests"] - posted["errors"]  # (those answered 201: an event each)
    await _caught_up(cfg, applied, tweets)
    fanned = cpu.snapshot()
    deliveries = await fanout._metric(cfg, "timeline_fanout_deliveries_total") - delivered
    result = {
        "tweets": tweets,
        "rps": posted["rps"],
        "errors": posted["errors"],
        "deliveries_per_tweet": deliveries / max(1, tweets),
        "post_cpu_us_per_tweet": cpu.per_request(before, written, tweets),
        "fanout_cpu_us_per_tweet": cpu.per_request(written, fanned, tweets),
    }
    say(
        f"tweet split: {tweets:,} POSTs at {posted['rps']:,.0f}/s with the fan-out frozen, "
        f"{result['deliveries_per_tweet']:.1f} deliveries a tweet after"
    )
    return result
