"""Cold reads alone, to compare two versions of the rebuild path on a loaded stack.

Each run flushes the timeline's Redis and reads page 1 of users picked at random
through the gateway for BENCH_SECONDS (each read a rebuild, as in bench/coldstart.py's
second measurement, the warm-up of the API processes' recent readers running too),
then reads the same users' pages again, warm, for as long. It prints rebuilds a
second, CPU a rebuild by kind of process, and that CPU counted in the warm page
measured right after it (report.rebuild_over_page): the machine's speed drifts by a
fifth within minutes here, and a rebuild in pages drifts much less, so two versions
compare better in pages than in µs (docs/benchmarks.md, session 26). Alternate the
versions, a run or more each, rather than running one after the other.

`make run`, then `make bench` once (the graph), then `bench/run.sh bench.cold_reads`
(it raises the gateway's per-address limits, as `make bench` does).
BENCH_COLD_READS_RUNS (3) runs; BENCH_SECONDS (10) for each measurement. Restart the
Timeline API first (switching versions does): its processes remember the readers of
everything read since they started (TIMELINE_WARM_READERS), and after each flush their
warm-up rebuilds them all, which a run waits out before its warm pass (WARM_UP_WAIT).
"""

from __future__ import annotations

import asyncio
import os
import random
import statistics
import time
import uuid

import redis

from bench import coldstart, cpu, loadgen, report
from bench.config import Config
from bench.home_sources import user_ids
from bench.progress import say
from bench.reads import PATH
from timeline.adapters.store import keys

PICKED = 30_000  # users a run may read: more than a run of cold reads reaches
WARM_UP_WAIT = 600.0  # seconds at most for the warm-up after a flush to land its homes


def _rebuilt(cfg: Config, lines: list[str]) -> list[str]:
    """Those of `lines` whose users' homes are in Redis now, to read them again warm."""
    client = redis.Redis.from_url(cfg.redis_url)
    try:
        found: list[str] = []
        for i in range(0, len(lines), 1000):
            some = lines[i : i + 1000]
            with client.pipeline(transaction=False) as pipe:
                for line in some:
                    pipe.exists(keys.home(uuid.UUID(line.split("\t", 1)[0])).marker)
                found += [line for line, there in zip(some, pipe.execute(), strict=True) if there]
    finally:
        client.close()
    return found or lines[:1]


def one_run(cfg: Config, users: list[str]) -> dict:
    """One flush, its cold reads, and the same users' pages warm."""
    picked = random.sample(users, min(len(users), PICKED))
    lines = [f"{user}\t{PATH}" for user in picked]
    coldstart.wait_for_rebuilds(cfg, WARM_UP_WAIT)  # the last run's warm-up done: nothing else counted
    before_rebuilds = coldstart.metric(cfg, "timeline_rebuilds_total")
    coldstart.flush(cfg)
    before, started = cpu.snapshot(), time.monotonic()
    cold = loadgen.run(cfg, cfg.gateway, lines, seconds=cfg.seconds, name="cold_reads_alone")
    took = time.monotonic() - started
    rebuilt = coldstart.metric(cfg, "timeline_rebuilds_total") - before_rebuilds
    per_rebuild = cpu.per_request(before, cpu.snapshot(), int(rebuilt))
    coldstart.wait_for_rebuilds(cfg, WARM_UP_WAIT)  # the warm-up's rebuilds out of the warm page's CPU
    # The users the cold reads read, whose pages they left whole in Redis (a rebuild
    # caches its page's items, a read the celebrities' it merged): not the homes the
    # warm-up rebuilt meanwhile, without items, whose first reads would ask the Users
    # API for them.
    again = _rebuilt(cfg, loadgen.lines_read(lines, cold))
    warm = loadgen.run(cfg, cfg.gateway, again, seconds=cfg.seconds, name="warm_reads_after")
    in_pages = report.rebuild_over_page(per_rebuild, warm.cpu_us, os.cpu_count())
    return {
        "rebuilds_per_second": round(rebuilt / took, 1) if took else 0.0,
        "cpu_us_per_rebuild": per_rebuild,
        "cold_errors": cold.errors,
        "warm_page_cpu_us": warm.cpu_us,
        "warm_errors": warm.errors,
        "rebuild_in_pages": round(in_pages.ratio, 2) if in_pages else None,
    }


def _line(i: int, run: dict) -> str:
    cost = run["cpu_us_per_rebuild"] or {}
    parts = ", ".join(f"{kind} {cost.get(kind, 0):,.0f}" for kind in ("postgres", "api", "users_api", "redis"))
    page = (run["warm_page_cpu_us"] or {}).get("total", 0)
    return (
        f"run {i}: {run['rebuilds_per_second']:,.0f} rebuilds/s; CPU a rebuild {cost.get('total', 0):,.0f} µs "
        f"({parts}); a warm page 1 {page:,.0f} µs; a rebuild {run['rebuild_in_pages']} pages; "
        f"errors {run['cold_errors']} cold, {run['warm_errors']} warm"
    )


def main() -> None:
    cfg = Config()
    runs = int(os.environ.get("BENCH_COLD_READS_RUNS", "3"))
    users = asyncio.run(user_ids(cfg))
    done = []
    for i in range(1, runs + 1):
        done.append(one_run(cfg, users))
        say(_line(i, done[-1]))
    pages = [run["rebuild_in_pages"] for run in done if run["rebuild_in_pages"] is not None]
    rates = [run["rebuilds_per_second"] for run in done]
    in_pages = f"{statistics.median(pages):.1f} ({min(pages):.1f} to {max(pages):.1f})" if pages else "n/a"
    print(
        f"cold reads alone, {runs} runs: rebuilds a second median {statistics.median(rates):,.0f} "
        f"({min(rates):,.0f} to {max(rates):,.0f}); a rebuild in pages median {in_pages}"
    )


if __name__ == "__main__":
    main()
