"""`bench/run.sh bench.cold_reads` against the running test stack: one run of cold reads
and the same users' pages warm gives every figure, with the CPU of the database
counted (a pool's new backends are born during such a run: docs/benchmarks.md,
session 26). No speed is asserted.

It flushes the timeline's Redis, as the bench smoke test does; the tests after it
make their own users."""

from __future__ import annotations

import asyncio
from dataclasses import replace

import pytest

from bench import cold_reads, config

pytestmark = pytest.mark.stack


def test_one_run_of_cold_reads_gives_every_figure(tmp_path) -> None:
    cfg = replace(config.load(), stack_dir=tmp_path, seconds=1.0)
    users = asyncio.run(cold_reads.user_ids(cfg))
    assert users, "the stack has users"
    run = cold_reads.one_run(cfg, users)
    assert run["rebuilds_per_second"] > 0, run
    assert run["cold_errors"] == 0 and run["warm_errors"] == 0, run
    rebuild = run["cpu_us_per_rebuild"] or {}
    assert rebuild.get("postgres", 0) > 0 and rebuild.get("users_api", 0) > 0, rebuild
    assert run["read"] and run["settled"], run
    assert run["warm_page_cpu_us"] and run["rebuild_in_pages"] and run["rebuild_in_pages"] > 0, run
    print(f"[bench] {cold_reads._line(1, run)}")
