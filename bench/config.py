"""Every setting of the bench, from the environment (the same variables the stack reads).

`make bench` sources deploy/local/env.sh first, so the ports, connection strings and
the timeline settings here are those of the stack it measures.
"""

from __future__ import annotations

import os
from dataclasses import dataclass, field
from pathlib import Path
from urllib.parse import urlparse

ROOT = Path(__file__).resolve().parents[1]


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


def _int(name: str, default: int) -> int:
    return int(_env(name, str(default)))


@dataclass(frozen=True)
class Config:
    scale: int = field(default_factory=lambda: _int("SCALE", 100_000))
    # The smaller scale of the growth comparison (0: skip it).
    growth_scale: int = field(default_factory=lambda: _int("BENCH_GROWTH_SCALE", -1))
    seconds: float = field(default_factory=lambda: float(_env("BENCH_SECONDS", "10")))
    connections: int = field(default_factory=lambda: _int("BENCH_CONNECTIONS", 32))
    # Follows per user on average (the graph is shaped so that only a few accounts cross
    # the celebrity threshold; see graph.py) and tweets per user on average.
    follows: int = field(default_factory=lambda: _int("BENCH_FOLLOWS", 100))
    tweets_per_user: int = field(default_factory=lambda: _int("BENCH_TWEETS_PER_USER", 10))
    sample: int = field(default_factory=lambda: _int("BENCH_SAMPLE", 2000))
    tweet_rate: float = field(default_factory=lambda: float(_env("BENCH_TWEET_RATE", "100")))
    fanout_deliveries: int = field(default_factory=lambda: _int("BENCH_FANOUT_DELIVERIES", 300_000))
    seed: int = field(default_factory=lambda: _int("BENCH_SEED", 42))
    # Live streams held open while tweets are posted at `tweet_rate` (bench/streams.py).
    streams: int = field(default_factory=lambda: _int("BENCH_STREAMS", 500))
    out_dir: Path = field(default_factory=lambda: Path(_env("BENCH_OUT_DIR", str(ROOT / "docs"))))
    # Ports of the bench's own servers: the pull-model and minimal apps, and the copy of
    # the gateway in front of them.
    port_base: int = field(default_factory=lambda: _int("BENCH_PORT_BASE", 8900))
    stack_dir: Path = field(default_factory=lambda: Path(_env("STACK_DIR", str(ROOT / ".local"))))

    # -- the stack under test (deploy/local/env.sh) ---------------------------------
    gateway_port: int = field(default_factory=lambda: _int("GATEWAY_PORT", 8080))
    users_api_port: int = field(default_factory=lambda: _int("USERS_API_PORT", 8001))
    timeline_api_port: int = field(default_factory=lambda: _int("TIMELINE_API_PORT", 8002))
    api_workers: int = field(default_factory=lambda: _int("TIMELINE_API_WORKERS", 2))
    redis_url: str = field(default_factory=lambda: _env("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0"))
    shard_dsns: tuple[str, ...] = field(
        default_factory=lambda: tuple(
            d.strip()
            for d in _env(
                "USERS_SHARD_DSNS",
                "postgresql+asyncpg://timeline@127.0.0.1:15432/users_shard_0,"
                "postgresql+asyncpg://timeline@127.0.0.1:15432/users_shard_1",
            ).split(",")
            if d.strip()
        )
    )
    threshold: int = field(default_factory=lambda: _int("TIMELINE_CELEBRITY_THRESHOLD", 10_000))
    max_items: int = field(default_factory=lambda: _int("TIMELINE_MAX_ITEMS", 800))
    ttl_seconds: int = field(default_factory=lambda: _int("TIMELINE_TTL", 7 * 24 * 3600))
    tweet_cache_ttl: int = field(default_factory=lambda: _int("TIMELINE_TWEET_CACHE_TTL", 3 * 24 * 3600))
    cursor_secret: str = field(default_factory=lambda: _env("TIMELINE_CURSOR_SECRET", "local-timeline-cursor-secret"))
    rebuild_seconds: int = field(default_factory=lambda: _int("TIMELINE_REBUILD_SECONDS", 60))
    warm_check_seconds: float = field(default_factory=lambda: float(_env("TIMELINE_WARM_CHECK_SECONDS", "1")))
    worker_count: int = field(default_factory=lambda: _int("TIMELINE_WORKER_COUNT", 1))
    worker_metrics_base: int = field(default_factory=lambda: _int("TIMELINE_WORKER_METRICS_BASE_PORT", 9111))

    @property
    def gateway(self) -> str:
        return f"http://127.0.0.1:{self.gateway_port}"

    @property
    def timeline_api(self) -> str:
        return f"http://127.0.0.1:{self.timeline_api_port}"

    @property
    def pg_dsns(self) -> list[str]:
        """The shard URLs as asyncpg takes them."""
        return [d.replace("postgresql+asyncpg://", "postgresql://") for d in self.shard_dsns]

    @property
    def redis_address(self) -> tuple[str, int, int]:
        url = urlparse(self.redis_url)
        return url.hostname or "127.0.0.1", url.port or 6379, int((url.path or "/0").strip("/") or 0)

    @property
    def worker_metrics(self) -> list[str]:
        return [f"http://127.0.0.1:{self.worker_metrics_base + i}/metrics" for i in range(self.worker_count)]

    @property
    def growth(self) -> int:
        """The smaller scale: a tenth of SCALE unless BENCH_GROWTH_SCALE says otherwise."""
        return self.scale // 10 if self.growth_scale < 0 else self.growth_scale

    @property
    def work_dir(self) -> Path:
        path = self.stack_dir / "bench"
        path.mkdir(parents=True, exist_ok=True)
        return path


def load() -> Config:
    return Config()
