"""Every setting of the Users Service, read once from the environment, with local defaults."""

from __future__ import annotations

import os
from dataclasses import dataclass, field

_LOCAL_SHARDS = (
    "postgresql+asyncpg://timeline@127.0.0.1:15432/users_shard_0,"
    "postgresql+asyncpg://timeline@127.0.0.1:15432/users_shard_1"
)


def _list(name: str, default: str) -> tuple[str, ...]:
    return tuple(item.strip() for item in os.environ.get(name, default).split(",") if item.strip())


@dataclass(frozen=True)
class Settings:
    # One connection string per physical shard database, in shard-map order.
    shard_dsns: tuple[str, ...] = field(default_factory=lambda: _list("USERS_SHARD_DSNS", _LOCAL_SHARDS))
    # Optional read replica per database (in USERS_SHARD_DSNS order) for the internal
    # read API; "" means the primary. The catalog keeps them from the first migration on
    # (databases added later name theirs: users.shards add-database --replica).
    replica_dsns: tuple[str, ...] = field(
        default_factory=lambda: tuple(os.environ.get("USERS_REPLICA_DSNS", "").split(","))
    )
    # Every process reads the shard map's version in database 0 this often, and follows
    # a move (a new map) without a restart; a write that a move fenced off reads it at once.
    shard_map_refresh_seconds: float = field(
        default_factory=lambda: float(os.environ.get("USERS_SHARD_MAP_REFRESH_SECONDS", "1.0"))
    )
    # After a move changed the map, how long its source keeps the moved rows, for the
    # reads of processes that have not read the new map yet: several refresh intervals.
    shard_move_grace_seconds: float = field(
        default_factory=lambda: float(os.environ.get("USERS_SHARD_MOVE_GRACE_SECONDS", "10"))
    )
    # A replica serves an internal read only once it has replayed everything its primary
    # had committed when the read began; it may take this long to catch up, then the
    # primary serves the read instead (docs/decisions/0020).
    replica_max_wait: float = field(
        default_factory=lambda: float(os.environ.get("USERS_REPLICA_MAX_WAIT_SECONDS", "0.05"))
    )
    pool_size: int = field(default_factory=lambda: int(os.environ.get("USERS_DB_POOL_SIZE", "10")))
    # Every client has a timeout, so a hung database turns into an error, never a hang:
    # connecting, each statement, and waiting for a pooled connection.
    db_connect_timeout: float = field(
        default_factory=lambda: float(os.environ.get("USERS_DB_CONNECT_TIMEOUT_SECONDS", "5"))
    )
    db_statement_timeout: float = field(
        default_factory=lambda: float(os.environ.get("USERS_DB_STATEMENT_TIMEOUT_SECONDS", "10"))
    )
    db_pool_timeout: float = field(default_factory=lambda: float(os.environ.get("USERS_DB_POOL_TIMEOUT_SECONDS", "10")))
    kafka_bootstrap: str = field(default_factory=lambda: os.environ.get("KAFKA_BOOTSTRAP_SERVERS", "127.0.0.1:19092"))
    # Connecting to a broker and each Kafka request give up after this.
    kafka_request_timeout_ms: int = field(
        default_factory=lambda: int(os.environ.get("KAFKA_REQUEST_TIMEOUT_MS", "15000"))
    )
    # How old a Kafka client's view of the cluster may get before it asks again
    # (docs/decisions/0019): a client asks only the brokers it knows.
    kafka_metadata_max_age_ms: int = field(
        default_factory=lambda: int(os.environ.get("KAFKA_METADATA_MAX_AGE_MS", "5000"))
    )
    # A local stack (make run, make test, docker compose) may run with the public default
    # cursor secrets; anything else refuses to start with them.
    local_stack: bool = field(
        default_factory=lambda: os.environ.get("LOCAL_STACK", "false").lower() in ("1", "true", "yes")
    )
    cursor_secret: str = field(
        default_factory=lambda: os.environ.get("USERS_CURSOR_SECRET", "local-users-cursor-secret")
    )
    # Twitter's limit: more follows are refused (409), which bounds what a page past the
    # timeline's window and a rebuild must read.
    max_following: int = field(default_factory=lambda: int(os.environ.get("USERS_MAX_FOLLOWING", "5000")))
    # The Timeline API, told of each tweet and delete as it is answered, so its author
    # reads their own writes at once (docs/decisions/0016). It is only a head start on
    # the fan-out: past this timeout the POST succeeds without it.
    timeline_api_url: str = field(
        default_factory=lambda: os.environ.get("USERS_TIMELINE_API_URL", "http://127.0.0.1:8002")
    )
    own_timeline_timeout: float = field(
        default_factory=lambda: float(os.environ.get("USERS_OWN_TIMELINE_TIMEOUT_SECONDS", "0.5"))
    )
    # The event topics' replicas, and how many must have a write before it counts
    # (the producers send with acks=all): 3 and 2 on a cluster of three brokers.
    kafka_replication_factor: int = field(default_factory=lambda: int(os.environ.get("KAFKA_REPLICATION_FACTOR", "1")))
    kafka_min_insync_replicas: int = field(
        default_factory=lambda: int(os.environ.get("KAFKA_MIN_INSYNC_REPLICAS", "1"))
    )
    relay_batch_size: int = field(default_factory=lambda: int(os.environ.get("USERS_RELAY_BATCH_SIZE", "500")))
    # Polling is only the fallback: the relay wakes on NOTIFY as soon as a row commits.
    relay_poll_seconds: float = field(default_factory=lambda: float(os.environ.get("USERS_RELAY_POLL_SECONDS", "1.0")))
    # How long the relay lets commits gather after a NOTIFY before publishing them.
    relay_linger_seconds: float = field(
        default_factory=lambda: float(os.environ.get("USERS_RELAY_LINGER_SECONDS", "0.05"))
    )
    relay_metrics_port: int = field(default_factory=lambda: int(os.environ.get("USERS_RELAY_METRICS_PORT", "9101")))
    # Loopback by default; containers set 0.0.0.0 so a scraper on the network reaches it.
    relay_metrics_addr: str = field(default_factory=lambda: os.environ.get("USERS_RELAY_METRICS_ADDR", "127.0.0.1"))
    log_level: str = field(default_factory=lambda: os.environ.get("LOG_LEVEL", "INFO"))


def load() -> Settings:
    return Settings()
