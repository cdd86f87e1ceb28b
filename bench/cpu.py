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
from pathlib import Path

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


def _read(pid: str) -> tuple[int, int, str] | None:
    try:
        stat = Path(f"/proc/{pid}/stat").read_text()
        cmdline = Path(f"/proc/{pid}/cmdline").read_bytes().replace(b"\0", b" ").decode(errors="replace")
    except OSError:
        return None
    fields = stat[stat.rindex(")") + 2 :].split()  # after "pid (comm) "
    return int(fields[1]), int(fields[11]) + int(fields[12]), cmdline  # ppid, utime + stime


def _kind(pid: str, table: dict[str, tuple[int, int, str]]) -> str:
    """Classify by the process's own command line or its parent's (uvicorn's workers
    are children of the process that names the app)."""
    seen = 0
    while pid in table and seen < 4:
        ppid, _, cmdline = table[pid]
        if "redis-server" in cmdline:
            return "redis"
        if cmdline.startswith("nginx"):
            return "nginx"
        if cmdline.startswith("postgres"):
            return "postgres"
        for module, kind in _APPS.items():
            if module in cmdline:
                return kind
        pid, seen = str(ppid), seen + 1
    return "other"


def snapshot() -> dict:
    table = {}
    if not Path("/proc/self/stat").exists():
        return {}
    for entry in os.listdir("/proc"):
        if entry.isdigit() and (found := _read(entry)) is not None:
            table[entry] = found
    children = resource.getrusage(resource.RUSAGE_CHILDREN)
    return {"table": table, "children": children.ru_utime + children.ru_stime}


def _spent(before: dict, after: dict) -> dict[str, float] | None:
    """Seconds of CPU by kind between two snapshots, over the processes alive at the
    second: all of the CPU of those born in between (a database backend for a pool's
    new connection, made while the load runs; left out before session 26, when a pool
    that had closed its idle connections showed PostgreSQL at a third of its CPU a
    rebuild), what the others spent since the first. A process that ended in between
    is missing its last part (the load generator, a child of the bench, is counted by
    its resource usage instead)."""
    if not before or not after:
        return None
    spent: dict[str, float] = {}
    old, new = before["table"], after["table"]
    for pid, (_, ticks, _) in new.items():
        since = old[pid][1] if pid in old else 0
        if ticks > since:
            kind = _kind(pid, new)
            spent[kind] = spent.get(kind, 0.0) + (ticks - since) / _TICK
    spent["load generator"] = after["children"] - before["children"]
    return spent


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
