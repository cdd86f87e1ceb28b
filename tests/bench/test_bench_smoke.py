"""`make bench` at a tiny scale against the running test stack: every figure of the
report is produced (a number, not null). No time is asserted: the figures of a loaded
two-core machine mean nothing; that they exist is what this checks.

The bench replaces the stack's data (it truncates the shards and flushes the timeline
Redis database, then puts the seed users back); the tests that run after it create
their own users, as they always do.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
from numbers import Number

import pytest

from tests.support import ROOT

pytestmark = pytest.mark.stack

# Figures that are text or counts of the run, not measurements.
NOT_FIGURES = {"machine", "date", "command", "notes", "aims", "settings"}
LABELS = {"endpoint", "what"}  # of a row (the hostile requests'), beside its figures


def _leaves(value: object, path: str = ""):
    if isinstance(value, dict):
        for key, inner in value.items():
            if not path and key in NOT_FIGURES:
                continue
            yield from _leaves(inner, f"{path}.{key}" if path else key)
    elif isinstance(value, list):
        for i, inner in enumerate(value):
            yield from _leaves(inner, f"{path}[{i}]")
    elif path.rsplit(".", 1)[-1] not in LABELS:
        yield path, value


def _no_reads_waited(figures: dict, path: str) -> bool:
    """A repair's mean wait (bench/coldstart.py) is None when no read waited on it: at
    this scale a read rarely finds its home being rebuilt by the other API process."""
    return path.endswith(".mean_ms") and figures.get(path.removesuffix("mean_ms") + "share") == 0


def test_bench_produces_every_figure(tmp_path) -> None:
    env = {
        **os.environ,
        "SCALE": "300",
        "BENCH_SECONDS": "1",
        "BENCH_SAMPLE": "100",
        "BENCH_FANOUT_DELIVERIES": "200",
        "BENCH_TWEET_RATE": "20",
        "BENCH_STREAMS": "40",
        "BENCH_OUT_DIR": str(tmp_path),
        # The bench's own servers, clear of the dev stack's ports (8900...).
        "BENCH_PORT_BASE": os.environ.get("BENCH_PORT_BASE", "18900"),
    }
    run = subprocess.run(
        [sys.executable, "-m", "bench"], cwd=ROOT, env=env, capture_output=True, text=True, timeout=300
    )
    assert run.returncode == 0, f"bench failed:\n{run.stderr[-4000:]}"
    result = json.loads((tmp_path / "benchmarks.json").read_text())
    figures = dict(_leaves(result))
    missing = [
        path
        for path, value in figures.items()
        if (not isinstance(value, Number) or isinstance(value, bool)) and not _no_reads_waited(figures, path)
    ]
    assert not missing, f"figures not produced: {missing}"
    for section in (
        "reads",
        "redis_floor",
        "fanout",
        "memory",
        "writes",
        "growth",
        "headline",
        "data",
        "hostile",
        "streams",
        "tweet_split",
        "idle_stack",
    ):
        assert result[section], f"{section} is empty"
    for key in (
        "service_page1_plain",
        "service_page1_celebrity",
        "service_page2",
        "service_refresh",
        "pull_page1_plain",
        "pull_page1_celebrity",
        "pull_page2",
        "minimal_page1",
        "minimal_page1_direct",
        "service_page1_plain_direct",
    ):
        for figure in ("rps", "p50_ms", "p99_ms", "p999_ms"):
            assert isinstance(result["reads"][key][figure], Number), (key, figure)
    assert len(result["growth"]) == 2, "reads and fan-out at two scales"
    assert result["aims"] and all(a["met"] in (True, False) for a in result["aims"])
    table = (tmp_path / "benchmarks.md").read_text()
    assert "Timeline reads" in table and "Fan-out" in table and "Aims" in table
    # The tweet's halves: the POSTs ran with the fan-out frozen, and it delivered after.
    split = result["tweet_split"]
    assert split["tweets"] > 0 and split["deliveries_per_tweet"] > 0, split
    assert "the POST and its relay alone" in table
    # The idle stack's pace, and the tweet's ratio without it beside the one judged.
    assert "The stack idle just before the writes" in table and "without it in either" in table
    # A rebuild in pages of the same run, beside the CPU a rebuild (bench/report.py).
    assert "A rebuild costs" in table and "of this run's pages 1" in table
    assert "| page 1, users without celebrities |" in run.stdout, "the table is printed"
    # A read waits on each kind of repair at most once: a share of the reads answered,
    # never more than all of them (wrk's own count missed the reads it left in flight).
    waited = result["coldstart"]["reads_during_warmup"]["waited"]
    assert all(0 <= kind["share"] <= 1 for kind in waited.values()), waited
