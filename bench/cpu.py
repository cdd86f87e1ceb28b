"""Where the CPU of a measurement went: microseconds of CPU per request, by process kind.

A rate says how many pages a second the whole machine served; on two cores shared by
the load generator, nginx, the API, Redis and PostgreSQL it moves a few percent from
run to run. The CPU each kind of process spent per request (user + system time from
/proc, before and after the run) is steadier, and says which part costs what: the
figure to compare when asking what the service's own logic adds over the minimal
endpoint. Linux only; elsewhere the figures are absent.
"""

from __future__ import annotations

import os
import resource
from collections.abc import Iterator
from pathlib import Path
from typing import NamedTuple

_TICK = os.sysconf("SC_CLK_TCK") if hasattr(os, "sysconf") else 100
_APPS = {  # a process's kind, by what its command line (or its parent's) runs
    "timeline.api.app": "api",
    "bench.minimal_app": "api",
    "bench.pull_model": "api",
    "users.api.app": "users_api",
    "timeline.worker": "worker",
    "users.relay": "relay",
    "kafka.Kafka": "kafka",
}


class _Process(NamedTuple):
    ppid: int
    ticks: int  # user + system CPU so far, in clock ticks
    cmdline: str
    started: int  # clock ticks after boot


def _read(pid: str) -> _Process | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return _Process(int(fields[1]), int(fields[11]) + int(fields[12]), cmdline, int(fields[19]))


def _uptime_ticks() -> int:
    return int(float(Path("/proc/uptime").read_text().split()[0]) * _TICK)


def _lineage(pid: str, table: dict[str, _Process], depth: int) -> Iterator[tuple[str, _Process]]:
    """The process and its ancestors in `table`, nearest first, `depth` of them at most."""
    for _ in range(depth):
        if pid not in table:
            return
        yield pid, table[pid]
        pid = str(table[pid].ppid)


def _kind(pid: str, table: dict[str, _Process]) -> str:
    """Classify by the process's own command line or its parent's (uvicorn's workers
    are children of the process that names the app)."""
    for _, process in _lineage(pid, table, 4):
        cmdline = process.cmdline
        if "redis-server" in cmdline:
            return "redis"
        if cmdline.startswith("nginx"):
            return "nginx"
        if cmdline.startswith("postgres"):
            return "postgres"
        for module, kind in _APPS.items():
            if module in cmdline:
                return kind
    return "other"


def snapshot() -> dict:
    table = {}
    if not Path("/proc/self/stat").exists():
        return {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _read(entry)) is not None:
            table[entry] = found
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"table": table, "children": children.ru_utime + children.ru_stime, "taken": _uptime_ticks()}


def _spent(before: dict, after: dict) -> dict[str, float] | None:
    """Seconds of CPU by kind between two snapshots: what the processes alive at both
    spent in between, and all of the CPU of those started in between (a database
    backend for a pool's new connection, made while the load runs). Before session 26
    only the first counted: right after a restart of the Users API, whose pools were
    empty, PostgreSQL read 42 µs a rebuild against 2,420 counted whole. A process that
    ended in between is missing (its last part, or all of it); the bench's own
    children are counted by their resource usage once reaped ("load generator"), so
    one started in between is left to that, not counted twice."""
    if not before or not after:
        return None
    spent: dict[str, float] = {}
    old, new = before["table"], after["table"]
    bench = str(os.getpid())
    for pid, process in new.items():
        if pid in old and old[pid].started == process.started:
            since = old[pid].ticks
        elif process.started >= before.get("taken", process.started + 1) and not _descends(pid, bench, new):
            since = 0
        else:  # alive before but not read then (or a reused pid): its share is unknown
            continue
        if process.ticks > since:
            kind = _kind(pid, new)
            spent[kind] = spent.get(kind, 0.0) + (process.ticks - since) / _TICK
    spent["load generator"] = after["children"] - before["children"]
    return spent


def _descends(pid: str, ancestor: str, table: dict[str, _Process]) -> bool:
    return any(found == ancestor for found, _ in _lineage(pid, table, 8))


def per_request(before: dict, after: dict, requests: int) -> dict[str, float] | None:
    """µs of CPU per request by kind (api, redis, nginx, postgres, load generator,
    other)."""
    spent = _spent(before, after)
    if spent is None or requests <= 0:
        return None
    figures = {kind: round(seconds * 1e6 / requests, 1) for kind, seconds in spent.items()}
    figures["total"] = round(sum(spent.values()) * 1e6 / requests, 1)
    return figures


def per_second(before: dict, after: dict, seconds: float) -> dict[str, float] | None:
    """µs of CPU a second by kind (the stack's pace with nothing asked of it, say)."""
    spent = _spent(before, after)
    if spent is None or seconds <= 0:
        return None
    figures = {kind: round(used * 1e6 / seconds) for kind, used in spent.items()}
    figures["total"] = round(sum(spent.values()) * 1e6 / seconds)
    return figures
