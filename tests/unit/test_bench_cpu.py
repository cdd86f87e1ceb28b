"""bench/cpu.py: the CPU of a measurement by kind of process, from two snapshots of /proc."""

from __future__ import annotations

from bench import cpu

TICK = cpu._TICK


def _snapshot(processes: dict[str, tuple[int, int, str]], children: float = 0.0) -> dict:
    return {"table": processes, "children": children}


def test_a_process_born_during_the_measurement_counts_whole() -> None:
    # A pool's new connection while the load runs: its backend did all of its work in
    # the window. Counting only processes alive at both ends showed PostgreSQL at 42
    # µs a rebuild instead of 2,420 after an API restart (docs/benchmarks.md, session 26).
    postmaster = ("1", 0, "postgres -D /data")
    before = _snapshot({"10": postmaster, "11": (10, 5 * TICK, "postgres: timeline users_shard_0")})
    after = _snapshot(
        {
            "10": postmaster,
            "11": (10, 7 * TICK, "postgres: timeline users_shard_0"),  # 2 s more
            "12": (10, 3 * TICK, "postgres: timeline users_shard_1"),  # born since: 3 s
        },
        children=0.5,
    )
    spent = cpu._spent(before, after)
    assert spent == {"postgres": 5.0, "load generator": 0.5}


def test_per_request_divides_by_the_requests_and_totals_every_kind() -> None:
    before = _snapshot({"20": ("1", 0, "redis-server 127.0.0.1:6379")})
    after = _snapshot({"20": ("1", 2 * TICK, "redis-server 127.0.0.1:6379")}, children=1.0)
    assert cpu.per_request(before, after, 1_000_000) == {"redis": 2.0, "load generator": 1.0, "total": 3.0}
