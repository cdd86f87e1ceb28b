"""Cold start: the timeline's Redis lost, and what the fleet does next.

Two measurements, each after flushing the timeline's Redis database (homes, celebrity
lists, the tweet cache: everything the read model holds):
  - **warm-up**: wrk reads page 1 of the users read earlier in the run (the API
    processes remember them: their homes are the ones the warm-up rebuilds first),
    while the warm-up runs; the latency and errors of those reads, and how long until
    every one of their homes is back in Redis; what those reads waited on, from the
    Timeline API's `timeline_read_repair_seconds` (their home's rebuild, another
    process's, celebrities' lists), and the closed loop's mean latency (connections /
    throughput);
  - **rebuilds**: wrk reads page 1 of users nobody has read (each read a rebuild, its
    page's items from the same call), while the warm-up runs again; rebuilds per second
    from the Timeline API's own counter (`timeline_rebuilds_total`, reads and warm-up
    together), and CPU per rebuild by process.
The run leaves Redis as these reads left it (homes of users not read are rebuilt on
their first read); the bench then fills it again for the tweet's halves (bench/__main__.py).
"""

from __future__ import annotations

import asyncio
import time

import httpx
import numpy as np
import redis

from bench import cpu, loadgen
from bench.config import Config
from bench.graph import Graph
from bench.progress import say
from bench.reads import PATH
from timeline.adapters.store import keys
from timeline.services.reader import REPAIR_KINDS


def _scrape(cfg: Config) -> str:
    """The Timeline API's metrics, all its processes', as it serves them."""
    return httpx.get(f"{cfg.timeline_api}/metrics", timeout=10).text


def metric(cfg: Config, name: str) -> float:
    text = _scrape(cfg)
    return sum(float(line.rsplit(" ", 1)[1]) for line in text.splitlines() if line.startswith(name + " "))


def wait_for_rebuilds(cfg: Config, timeout: float = 120.0) -> bool:
    """Until the Timeline API's rebuilds have stopped (its counter still for a second):
    the warm-up may still be landing homes after the reads ended. False: still going
    at `timeout`."""
    deadline, last, still = time.monotonic() + timeout, -1.0, 0
    while still < 2 and time.monotonic() < deadline:
        now = metric(cfg, "timeline_rebuilds_total")
        still, last = (still + 1 if now == last else 0), now
        time.sleep(0.5)
    return still >= 2


def _repairs(text: str) -> dict[str, tuple[float, float]]:
    """Each repair's (reads that waited on it, seconds they waited in all) so far, summed
    over the Timeline API's processes (`text`: their metrics)."""
    found = {repair: [0.0, 0.0] for repair in REPAIR_KINDS}
    for line in text.splitlines():
        for i, suffix in enumerate(("_count{", "_sum{")):
            if line.startswith("timeline_read_repair_seconds" + suffix):
                repair = line.split('repair="', 1)[1].split('"', 1)[0]
                if repair in found:
                    found[repair][i] += float(line.rsplit(" ", 1)[1])
    return {repair: (count, seconds) for repair, (count, seconds) in found.items()}


def _timeline_reads(text: str) -> float:
    """GET /api/v1/timeline requests the Timeline API has answered so far, any status,
    summed over its processes (`text`: their metrics)."""
    series = f'method="GET",path="{PATH}",'
    return sum(
        float(line.rsplit(" ", 1)[1])
        for line in text.splitlines()
        if line.startswith("litestar_requests_total{") and series in line
    )


def _settled(cfg: Config) -> tuple[dict[str, tuple[float, float]], float]:
    """The repairs and the reads once the reads wrk left in flight have ended (each
    read is counted when it ends, and its request record within 0.1 s of that): both
    unchanged across a pause, or as they stand after a few seconds."""
    last = _repairs_and_reads(cfg)
    for _ in range(10):
        time.sleep(0.3)
        now = _repairs_and_reads(cfg)
        if now == last:
            break
        last = now
    return last


def _repairs_and_reads(cfg: Config) -> tuple[dict[str, tuple[float, float]], float]:
    text = _scrape(cfg)  # both from one answer
    return _repairs(text), _timeline_reads(text)


def _waited(before: dict[str, tuple[float, float]], after: dict[str, tuple[float, float]], reads: float) -> dict:
    """Per repair: the share of `reads` that waited on it, and their mean wait (ms; None:
    none waited)."""
    out = {}
    for repair in REPAIR_KINDS:
        count = after[repair][0] - before[repair][0]
        seconds = after[repair][1] - before[repair][1]
        out[repair] = {
            "share": round(count / reads, 3) if reads else 0.0,
            "mean_ms": round(1000 * seconds / count, 1) if count else None,
        }
    return out


def _lines(graph: Graph, users: list[int]) -> list[str]:
    return [f"{graph.user_ids[u]}\t{PATH}" for u in users]


def flush(cfg: Config) -> None:
    client = redis.Redis.from_url(cfg.redis_url)
    try:
        client.flushdb()
    finally:
        client.close()


async def _watch_homes(cfg: Config, graph: Graph, users: list[int], timeout: float) -> float | None:
    """Seconds until every one of `users`' homes is in Redis again (None: not in time)."""
    markers = [keys.home(graph.user_ids[u]).marker for u in users]
    client = redis.asyncio.Redis.from_url(cfg.redis_url)
    started = time.monotonic()
    try:
        while time.monotonic() - started < timeout:
            present = 0
            for i in range(0, len(markers), 1000):
                present += await client.exists(*markers[i : i + 1000])
            if present == len(markers):
                return time.monotonic() - started
            await asyncio.sleep(0.1)
        return None
    finally:
        await client.aclose()


async def run(cfg: Config, graph: Graph, remembered: list[int], rng: np.random.Generator) -> dict:
    """`remembered`: users read earlier in the run (by the service: the API processes
    remember them)."""
    seconds = max(cfg.seconds, 3)
    await asyncio.sleep(cfg.warm_check_seconds * 2)  # every process has seen the current generation
    repairs_before, reads_before = _repairs_and_reads(cfg)
    flush(cfg)
    watch = asyncio.create_task(_watch_homes(cfg, graph, remembered, timeout=300))
    during = (
        await asyncio.to_thread(
            loadgen.run, cfg, cfg.gateway, _lines(graph, remembered), "GET", seconds, None, "warmup_reads"
        )
    ).as_dict()
    # What the reads waited on (the warm-up's own rebuilds are no read's: not counted),
    # as a share of the reads the service answered: wrk's count leaves out the reads it
    # had in flight when it stopped, which the histogram counts when they end.
    repairs_after, reads_after = _settled(cfg)
    during["waited"] = _waited(repairs_before, repairs_after, reads_after - reads_before)
    # Connections / throughput: a closed loop's mean latency (Little's law; bench/report.py).
    during["closed_loop_mean_ms"] = round(1000 * cfg.connections / during["rps"], 1) if during["rps"] else None
    warmed_in = await watch
    rebuilt = during["waited"]["rebuild"]
    say(
        f"warm-up: {len(remembered):,} recent readers' homes back in {warmed_in or 0:.1f} s; reads meanwhile "
        f"{during['rps']:,.0f}/s, p50 {during['p50_ms']:.1f} ms, p99 {during['p99_ms']:.1f} ms, "
        f"{during['errors']} errors; {100 * rebuilt['share']:.0f}% of them waited on a rebuild here "
        f"(mean {rebuilt['mean_ms'] or 0} ms)"
    )

    pool = np.setdiff1d(np.arange(graph.n), np.asarray(remembered, dtype=np.int64))
    fresh = rng.choice(pool, size=min(len(pool), 30_000), replace=False).tolist()
    await asyncio.sleep(cfg.warm_check_seconds * 2)
    rebuilds_before = metric(cfg, "timeline_rebuilds_total")
    flush(cfg)
    before, started = cpu.snapshot(), time.monotonic()
    cold = (
        await asyncio.to_thread(loadgen.run, cfg, cfg.gateway, _lines(graph, fresh), "GET", seconds, None, "cold_reads")
    ).as_dict()
    took = time.monotonic() - started
    rebuilt = metric(cfg, "timeline_rebuilds_total") - rebuilds_before
    per_rebuild = cpu.per_request(before, cpu.snapshot(), int(rebuilt))
    rate = rebuilt / took if took else 0.0
    say(
        f"cold reads: {rate:,.0f} rebuilds/s ({rebuilt:,.0f} in {took:.1f} s), reads p50 {cold['p50_ms']:.1f} ms, "
        f"p99 {cold['p99_ms']:.1f} ms, {cold['errors']} errors; "
        f"CPU per rebuild {(per_rebuild or {}).get('total', 0):,.0f} µs"
    )
    await _watch_homes(cfg, graph, remembered, timeout=120)  # the warm-up done: quiet again
    return {
        "remembered": len(remembered),
        "warmed_in_seconds": None if warmed_in is None else round(warmed_in, 2),
        "warm_homes_per_second": round(len(remembered) / warmed_in, 1) if warmed_in else None,
        "reads_during_warmup": during,
        "rebuilds": int(rebuilt),
        "rebuilds_per_second": round(rate, 1),
        "cold_reads": cold,
        "cpu_us_per_rebuild": per_rebuild,
    }
