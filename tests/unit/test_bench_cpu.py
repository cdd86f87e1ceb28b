"""bench/cpu.py: the CPU of a measurement by kind of process, from two snapshots of /proc."""

from __future__ import annotations

import os

from bench import cpu

TICK = cpu._TICK
TAKEN = 1_000 * TICK  # when the first snapshot was taken, in ticks after boot


def _process(ppid: int, seconds: float, cmdline: str, started: int = 0) -> cpu._Process:
    return cpu._Process(ppid, int(seconds * TICK), cmdline, started)


def _snapshot(processes: dict[str, cpu._Process], children: float = 0.0, taken: int = TAKEN) -> dict:
    return {"table": processes, "children": children, "taken": taken}


POSTMASTER = _process(1, 0, "postgres -D /data")


def test_a_process_started_during_the_measurement_counts_whole() -> None:
    # A pool's new connection while the load runs: its backend did all of its work in
    # the window. Counting only processes alive at both ends showed PostgreSQL at 42
    # µs a rebuild instead of 2,420 after a restart of the Users API (docs/benchmarks.md,
    # session 26).
    before = _snapshot({"10": POSTMASTER, "11": _process(10, 5, "postgres: timeline users_shard_0")})
    after = _snapshot(
        {
            "10": POSTMASTER,
            "11": _process(10, 7, "postgres: timeline users_shard_0"),  # 2 s more
            "12": _process(10, 3, "postgres: timeline users_shard_1", started=TAKEN + 50),  # born since: 3 s
        },
        children=0.5,
    )
    assert cpu._spent(before, after) == {"postgres": 5.0, "load generator": 0.5}


def test_a_process_the_first_snapshot_missed_or_a_reused_pid_is_not_counted_whole() -> None:
    # Started before the first snapshot but not in it (its /proc read failed), or a pid
    # taken by another process since: its CPU in the window is unknown, and its whole
    # life (a broker's hours) would swamp the figures.
    before = _snapshot({"10": POSTMASTER, "13": _process(10, 4, "postgres: old backend", started=5)})
    after = _snapshot(
        {
            "10": POSTMASTER,
            "12": _process(10, 3_600, "postgres: timeline users_shard_1", started=TAKEN - 100),
            "13": _process(10, 9, "postgres: a new backend on an old pid", started=TAKEN - 1),
        }
    )
    assert cpu._spent(before, after) == {"load generator": 0.0}


def test_the_benchs_own_children_started_meanwhile_are_left_to_their_resource_usage() -> None:
    bench = str(os.getpid())
    before = _snapshot({bench: _process(1, 1, "python -m bench")})
    after = _snapshot(
        {bench: _process(1, 1, "python -m bench"), "20": _process(int(bench), 2, "wrk -t 2", started=TAKEN + 10)},
        children=0.0,
    )
    assert cpu._spent(before, after) == {"load generator": 0.0}  # counted once reaped, not here too


def test_per_request_divides_by_the_requests_and_totals_every_kind() -> None:
    redis = _process(1, 0, "redis-server 127.0.0.1:6379")
    before = _snapshot({"20": redis})
    after = _snapshot({"20": redis._replace(ticks=2 * TICK)}, children=1.0)
    assert cpu.per_request(before, after, 1_000_000) == {"redis": 2.0, "load generator": 1.0, "total": 3.0}
