"""What the figures were measured on."""

from __future__ import annotations

import os
import platform
import re
import subprocess

import asyncpg
import redis

from bench.config import Config


def _first(pattern: str, text: str, default: str = "?") -> str:
    found = re.search(pattern, text, re.M)
    return found.group(1).strip() if found else default


def _run(*cmd: str) -> str:
    try:
        out = subprocess.run(cmd, capture_output=True, text=True, timeout=10)
        return (out.stdout + out.stderr).strip()
    except (OSError, subprocess.SubprocessError):
        return "?"


async def describe(cfg: Config) -> dict[str, str | int]:
    cpuinfo = open("/proc/cpuinfo").read()
    meminfo = open("/proc/meminfo").read()
    host, port, db = cfg.redis_address
    client = redis.Redis(host=host, port=port, db=db)
    redis_version = client.info("server")["redis_version"]
    client.close()
    conn = await asyncpg.connect(cfg.pg_dsns[0])
    pg_version = (await conn.fetchval("SHOW server_version")).split()[0]
    await conn.close()
    return {
        "cpu": _first(r"^model name\s*:\s*(.+)$", cpuinfo),
        "cores": os.cpu_count() or 0,
        "memory_gib": round(int(_first(r"^MemTotal:\s*(\d+)", meminfo, "0")) / 1024 / 1024, 1),
        "kernel": platform.release(),
        "os": _first(r'^PRETTY_NAME="?([^"\n]+)', open("/etc/os-release").read())
        if os.path.exists("/etc/os-release")
        else "?",
        "python": platform.python_version(),
        "redis": redis_version,
        "postgresql": pg_version,
        "kafka": os.environ.get("KAFKA_VERSION", "?"),
        "nginx": _first(r"nginx/(\S+)", _run("nginx", "-v")),
        "wrk": _first(r"wrk (\S+)", _run("wrk", "-v")),
        "asgi_server": os.environ.get("API_SERVER", "uvicorn"),
        "api_workers": cfg.api_workers,
        "fanout_workers": cfg.worker_count,
    }
