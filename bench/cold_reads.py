"""Cold reads alone, to compare two versions of the rebuild path on a loaded stack.

Each run flushes the timeline's Redis and reads page 1 of users picked at random, none
read by an earlier run, through the gateway for BENCH_SECONDS (each read a rebuild, as
in bench/coldstart.py's second measurement, the warm-up of the API processes' recent
readers running too: its share of the rebuilds is printed). Then, the warm-up done, it
reads again for as long the pages of those of the same users who follow no celebrity
(the report's page; all of them if none). It prints rebuilds a second, CPU a rebuild
by kind of process, and that CPU counted in the warm page (report.rebuild_over_page):
the machine's speed drifts by a fifth within minutes here, and a rebuild in pages
drifts much less, so two versions compare better in pages than in µs
(docs/benchmarks.md, session 26). Alternate the versions rather than running one
after the other.

`make run`, then `make bench` once (the graph), then `bench/run.sh bench.cold_reads`
(it raises the gateway's per-address limits, as `make bench` does).
BENCH_COLD_READS_RUNS (3) runs; BENCH_SECONDS (10) for each measurement. Restart the
Timeline API first (switching versions does): its processes remember the readers of
everything read since they started (TIMELINE_WARM_READERS), and after each flush their
warm-up rebuilds them all, beside the cold reads and then until done (WARM_UP_WAIT at
most), so each run carries more of it than the one before: compare runs of the same
number.
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


def _warm_lines(cfg: Config, lines: list[str]) -> tuple[list[str], str]:
    """Those of `lines` whose users' homes are in Redis now, to read them again warm:
    the ones that follow no celebrity, as the report's page is, if any does."""
    client = redis.Redis.from_url(cfg.redis_url)
    try:
        plain: list[str] = []
        others: list[str] = []
        for i in range(0, len(lines), 1000):
            some = lines[i : i + 1000]
            with client.pipeline(transaction=False) as pipe:
                for line in some:
                    home = keys.home(uuid.UUID(line.split("\t", 1)[0]))
                    pipe.exists(home.marker)
                    pipe.exists(home.celebrities)
                found = pipe.execute()
            for line, there, celebrities in zip(some, found[0::2], found[1::2], strict=True):
                if there:
                    (others if celebrities else plain).append(line)
    finally:
        client.close()
    if not plain and not others:
        raise RuntimeError("none of the users the cold reads read has a home in Redis")
    return (plain, "users without celebrities") if plain else (others, "users with celebrities")


def one_run(cfg: Config, users: list[str]) -> dict:
    """One flush, its cold reads of `users` (none read by an earlier run: their homes
    would come back through the warm-up), and the same users' pages warm."""
    picked = random.sample(users, min(len(users), PICKED))
    lines = [f"{user}\t{PATH}" for user in picked]
    settled = coldstart.wait_for_rebuilds(cfg, WARM_UP_WAIT)  # the last run's warm-up done
    warmed_before = coldstart.metric(cfg, "timeline_warmed_homes_total")
    before_rebuilds = coldstart.metric(cfg, "timeline_rebuilds_total")
    coldstart.flush(cfg)
    before, started = cpu.snapshot(), time.monotonic()
    cold = loadgen.run(cfg, cfg.gateway, lines, seconds=cfg.seconds, name="cold_reads_alone")
    took = time.monotonic() - started
    rebuilt = coldstart.metric(cfg, "timeline_rebuilds_total") - before_rebuilds
    per_rebuild = cpu.per_request(before, cpu.snapshot(), int(rebuilt))
    warmed = coldstart.metric(cfg, "timeline_warmed_homes_total") - warmed_before
    settled = coldstart.wait_for_rebuilds(cfg, WARM_UP_WAIT) and settled  # out of the warm page's CPU
    # The users the cold reads read, whose pages they left whole in Redis (a rebuild
    # caches its page's items, a read the celebrities' it merged): not the homes the
    # warm-up rebuilt meanwhile, without items, whose first reads would ask the Users
    # API for them.
    read = loadgen.lines_read(lines, cold)
    again, kind = _warm_lines(cfg, read)
    warm = loadgen.run(cfg, cfg.gateway, again, seconds=cfg.seconds, name="warm_reads_after")
    in_pages = report.rebuild_over_page(per_rebuild, warm.cpu_us, os.cpu_count())
    return {
        "read": [line.split("\t", 1)[0] for line in read],
        "rebuilds_per_second": round(rebuilt / took, 1) if took else 0.0,
        "warmed_in_window": int(warmed),
        "cpu_us_per_rebuild": per_rebuild,
        "cold_errors": cold.errors,
        "warm_page": kind,
        "warm_page_cpu_us": warm.cpu_us,
        "warm_errors": warm.errors,
        "rebuild_in_pages": round(in_pages.ratio, 2) if in_pages else None,
        "settled": settled,
    }


def _line(i: int, run: dict) -> str:
    cost = run["cpu_us_per_rebuild"] or {}
    parts = ", ".join(f"{kind} {cost.get(kind, 0):,.0f}" for kind in ("postgres", "api", "users_api", "redis"))
    page = (run["warm_page_cpu_us"] or {}).get("total", 0)
    pages = f"{run['rebuild_in_pages']:.1f}" if run["rebuild_in_pages"] is not None else "n/a"
    return (
        f"run {i}: {run['rebuilds_per_second']:,.0f} rebuilds/s ({run['warmed_in_window']:,} of them the warm-up's); "
        f"CPU a rebuild {cost.get('total', 0):,.0f} µs ({parts}); a warm page 1 of {run['warm_page']} "
        f"{page:,.0f} µs; a rebuild {pages} pages; errors {run['cold_errors']} cold, {run['warm_errors']} warm"
        + ("" if run["settled"] else f"; the warm-up had not finished in {WARM_UP_WAIT:.0f} s: figures mixed")
    )


def main() -> None:
    cfg = Config()
    runs = max(1, int(os.environ.get("BENCH_COLD_READS_RUNS", "3")))
    users = asyncio.run(user_ids(cfg))
    done: list[dict] = []
    for i in range(1, runs + 1):
        read_before = {user for run in done for user in run["read"]}
        done.append(one_run(cfg, [user for user in users if user not in read_before]))
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
