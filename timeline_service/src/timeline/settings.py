"""Every setting of the Timeline Service, read once from the environment, with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field


def _env(name: str, default: str) -> str:
    return os.environ.get(name, default)


@dataclass(frozen=True)
class Settings:
    redis_url: str = field(default_factory=lambda: _env("TIMELINE_REDIS_URL", "redis://127.0.0.1:16379/0"))
    # true: TIMELINE_REDIS_URL names one node of a Redis Cluster (keys carry hash tags).
    redis_cluster: bool = field(
        default_factory=lambda: _env("TIMELINE_REDIS_CLUSTER", "false").lower() in ("1", "true", "yes")
    )
    kafka_bootstrap: str = field(default_factory=lambda: _env("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    users_api_url: str = field(default_factory=lambda: _env("TIMELINE_USERS_API_URL", "http://127.0.0.1:8001"))
    # Authors with at least this many followers are merged at read time, not fanned out.
    celebrity_threshold: int = field(default_factory=lambda: int(_env("TIMELINE_CELEBRITY_THRESHOLD", "10000")))
    # Twitter kept 800 ids per home timeline; older pages come from the source of truth.
    max_items: int = field(default_factory=lambda: int(_env("TIMELINE_MAX_ITEMS", "800")))
    # A timeline unread this long expires (refreshed on every read) and is rebuilt on demand.
    ttl_seconds: int = field(default_factory=lambda: int(_env("TIMELINE_TTL", str(7 * 24 * 3600))))
    # A home being rebuilt is marked for this long only; whole, for TIMELINE_TTL.
    rebuild_seconds: int = field(default_factory=lambda: int(_env("TIMELINE_REBUILD_SECONDS", "60")))
    # After a lost Redis each API process rebuilds the homes of the callers it served
    # last (this many remembered; 0: no warm-up), this many at a time, having looked for
    # a loss this often.
    warm_readers: int = field(default_factory=lambda: int(_env("TIMELINE_WARM_READERS", "100000")))
    warm_concurrency: int = field(default_factory=lambda: int(_env("TIMELINE_WARM_CONCURRENCY", "4")))
    warm_check_seconds: float = field(default_factory=lambda: float(_env("TIMELINE_WARM_CHECK_SECONDS", "1")))
    tweet_cache_ttl_seconds: int = field(
        default_factory=lambda: int(_env("TIMELINE_TWEET_CACHE_TTL", str(3 * 24 * 3600)))
    )
    # How many of a newly followed author's tweets a follow brings into the timeline.
    backfill_items: int = field(default_factory=lambda: int(_env("TIMELINE_BACKFILL_ITEMS", "200")))
    # How long a Timeline API process remembers that a caller id is unknown (404 without
    # asking Redis or the Users Service again).
    unknown_user_ttl_seconds: float = field(
        default_factory=lambda: float(_env("TIMELINE_UNKNOWN_USER_TTL_SECONDS", "30"))
    )
    # A local stack (make run, make test, docker compose) may run with the public default
    # cursor secrets; anything else refuses to start with them.
    local_stack: bool = field(default_factory=lambda: _env("LOCAL_STACK", "false").lower() in ("1", "true", "yes"))
    cursor_secret: str = field(default_factory=lambda: _env("TIMELINE_CURSOR_SECRET", "local-timeline-cursor-secret"))
    # Live streams (GET /timeline/stream): a comment at least this often keeps proxies
    # and clients from timing out, and is when a stream renews its place and re-reads.
    stream_keepalive_seconds: float = field(
        default_factory=lambda: float(_env("TIMELINE_STREAM_KEEPALIVE_SECONDS", "10"))
    )
    # A stream sends an item once it is this old (what was posted before it has reached
    # the home by then, normally), and still sends one the fan-out brought later, if it
    # is within the grace period of the newest item sent (docs/decisions/0017).
    stream_settle_seconds: float = field(default_factory=lambda: float(_env("TIMELINE_STREAM_SETTLE_SECONDS", "0.25")))
    stream_grace_seconds: float = field(default_factory=lambda: float(_env("TIMELINE_STREAM_GRACE_SECONDS", "10")))
    streams_per_caller: int = field(default_factory=lambda: int(_env("TIMELINE_STREAMS_PER_CALLER", "4")))
    # Past this, a process refuses new streams (503) rather than starve its page reads.
    streams_per_process: int = field(default_factory=lambda: int(_env("TIMELINE_STREAMS_PER_PROCESS", "1000")))
    consumer_group: str = field(default_factory=lambda: _env("TIMELINE_CONSUMER_GROUP", "timeline-fanout"))
    # A failed event is tried again after this, twice that, ... up to the cap, for as
    # long as it takes (docs/decisions/0013): nothing that can pass is ever dropped.
    retry_backoff_seconds: float = field(default_factory=lambda: float(_env("TIMELINE_RETRY_BACKOFF_SECONDS", "0.2")))
    retry_max_backoff_seconds: float = field(
        default_factory=lambda: float(_env("TIMELINE_RETRY_MAX_BACKOFF_SECONDS", "30"))
    )
    # Every client has a timeout, so a hung store turns into a retry, never a hang.
    redis_connect_timeout: float = field(
        default_factory=lambda: float(_env("TIMELINE_REDIS_CONNECT_TIMEOUT_SECONDS", "2"))
    )
    redis_timeout: float = field(default_factory=lambda: float(_env("TIMELINE_REDIS_TIMEOUT_SECONDS", "5")))
    # Connections a process keeps to Redis (to each node, on a cluster); on one server a
    # command beyond them waits for one, up to TIMELINE_REDIS_TIMEOUT_SECONDS.
    redis_max_connections: int = field(default_factory=lambda: int(_env("TIMELINE_REDIS_MAX_CONNECTIONS", "100")))
    users_api_connect_timeout: float = field(
        default_factory=lambda: float(_env("TIMELINE_USERS_API_CONNECT_TIMEOUT_SECONDS", "2"))
    )
    users_api_timeout: float = field(default_factory=lambda: float(_env("TIMELINE_USERS_API_TIMEOUT_SECONDS", "10")))
    # Connecting to a broker and each Kafka request (fetch, commit, send) give up after this.
    kafka_request_timeout_ms: int = field(default_factory=lambda: int(_env("KAFKA_REQUEST_TIMEOUT_MS", "15000")))
    # How old a Kafka client's view of the cluster may get before it asks again
    # (docs/decisions/0019): a client asks only the brokers it knows.
    kafka_metadata_max_age_ms: int = field(default_factory=lambda: int(_env("KAFKA_METADATA_MAX_AGE_MS", "5000")))
    # The worker's Kafka long-poll: a fetch waits this long for 64 KiB of events
    # (timeline/worker/__main__.py says why it is short).
    kafka_fetch_max_wait_ms: int = field(default_factory=lambda: int(_env("TIMELINE_KAFKA_FETCH_MAX_WAIT_MS", "25")))
    # Followers fetched (and timelines written in one Redis pipeline) per fan-out step.
    fanout_batch: int = field(default_factory=lambda: int(_env("TIMELINE_FANOUT_BATCH", "1000")))
    worker_metrics_port: int = field(default_factory=lambda: int(_env("TIMELINE_WORKER_METRICS_PORT", "9102")))
    # Loopback by default; containers set 0.0.0.0 so a scraper on the network reaches it.
    worker_metrics_addr: str = field(default_factory=lambda: _env("TIMELINE_WORKER_METRICS_ADDR", "127.0.0.1"))
    log_level: str = field(default_factory=lambda: _env("LOG_LEVEL", "INFO"))


def load() -> Settings:
    return Settings()
