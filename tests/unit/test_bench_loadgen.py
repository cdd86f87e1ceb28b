"""bench/loadgen.py without wrk: which users a run went through, from each thread's
stretch of the list (bench/cold_reads.py reads them again warm)."""

from __future__ import annotations

from bench.loadgen import Result, lines_read


def _ran(*stretches: tuple[int, int]) -> Result:
    return Result(rps=0, p50_ms=0, p99_ms=0, p999_ms=0, requests=0, mean_ms=0, errors=0, stretches=stretches)


def test_each_stretch_from_its_start_wrapping_round_the_list() -> None:
    lines = [f"user{i}" for i in range(10)]
    # From 8: 8, 9, then round to 0 and 1; from 5: 5.
    assert lines_read(lines, _ran((8, 4), (5, 1))) == ["user8", "user9", "user0", "user1", "user5"]


def test_a_run_that_lapped_the_list_gives_each_line_once() -> None:
    lines = [f"user{i}" for i in range(10)]
    assert sorted(lines_read(lines, _ran((3, 25), (8, 2)))) == sorted(lines)
