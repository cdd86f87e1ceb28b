"""A Kafka client whose view of the cluster names only dead brokers asks the bootstrap
servers again, as a new client would.

aiokafka refreshes its view only from the brokers that view names (aio-libs/aiokafka#459,
open; Java's client had the same gap, KAFKA-7931, and librdkafka 2.10 added a
re-bootstrap). After every broker restarted, a view taken while one broker alone was up
names that broker only; `KAFKA_METADATA_MAX_AGE_MS` widens it again within seconds, but
if that broker dies first, the worker's consumer is stuck until it returns, with the
other brokers up (seen in the fault suite). docs/decisions/0019.
"""

from __future__ import annotations

import asyncio
import logging
from collections.abc import Callable
from typing import Any, Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer
from aiokafka.structs import BrokerMetadata

from timeline.worker.retry import Backoff

log = logging.getLogger("timeline.worker")

# aiokafka counts a refresh as failed only once every broker its view names failed to
# answer: this many of those in a row, with none that succeeded between, and the view
# is taken again from the bootstrap servers. (Counting failures, not time: a refresh
# that tries a frozen broker first waits a request timeout, and is no sign of a dead
# view while another broker in it answers.)
FAILED_REFRESHES = 3
LOOK_SECONDS = 1.0  # how often the counts are looked at (no I/O unless a view is dead)


class Cluster(Protocol):
    """What of aiokafka's ClusterMetadata this uses."""

    _brokers: dict[Any, Any]  # the view's brokers (no public way to replace them)

    def add_listener(self, listener: Callable[[object], None]) -> None: ...

    def failed_update(self, exception: BaseException | None) -> None: ...


class Client(Protocol):
    """What of aiokafka's AIOKafkaClient this uses."""

    cluster: Cluster

    @property
    def hosts(self) -> list[tuple[str, int, Any]]: ...  # the bootstrap servers

    def force_metadata_update(self) -> object: ...  # a future nobody needs to await


def client_of(kafka: AIOKafkaConsumer | AIOKafkaProducer) -> Client:
    """The AIOKafkaClient inside a producer (public `client`) or a consumer (`_client`:
    aiokafka has no public name for it)."""
    return getattr(kafka, "client", None) or kafka._client


class Rebootstrap:
    """Counts one client's failed refreshes in a row. Past FAILED_REFRESHES, `check()`
    puts the bootstrap servers in place of its view's brokers and asks for a refresh at
    once: aiokafka asks them, with the topics the client follows, and the answer is the
    new view. The consumer keeps its group and positions.
    (AIOKafkaClient.bootstrap() would ask for no topics: a group leader that saw its
    topics' partitions vanish would rebalance the group.)"""

    def __init__(self, name: str, client: Client, backoff: Backoff) -> None:
        self.name, self.client, self.backoff = name, client, backoff
        self.failures = 0  # refreshes that failed since the last that succeeded
        self.attempts = 0  # re-bootstraps since the last refresh that succeeded
        self.rebootstraps = 0  # in all (tests)
        self._next_at = 0.0  # loop time before which none is tried again
        cluster = client.cluster
        cluster.add_listener(self._refreshed)  # called on every refresh that succeeded
        failed = cluster.failed_update

        def counted(exception: BaseException | None) -> None:
            self.failures += 1
            failed(exception)

        cluster.failed_update = counted  # type: ignore[method-assign]

    def _refreshed(self, _cluster: object) -> None:
        if self.attempts:
            log.warning("kafka view taken again from the bootstrap servers", extra={"client": self.name})
        self.failures = self.attempts = 0

    def dead(self) -> bool:
        return self.failures >= FAILED_REFRESHES

    def check(self, now: float) -> bool:
        """Re-bootstrap if the view is dead and the backoff allows; True if tried."""
        if not self.dead() or now < self._next_at:
            return False
        self.attempts += 1
        self.rebootstraps += 1
        self._next_at = now + self.backoff.delay(self.attempts)
        log.warning(
            "kafka view names no broker that answers; asking the bootstrap servers",
            extra={"client": self.name, "failed_refreshes": self.failures, "attempt": self.attempts},
        )
        # The view, as far as aiokafka's next refresh goes, is the bootstrap servers
        # (named as aiokafka names them before its first view); the answer replaces it.
        self.client.cluster._brokers = {
            f"bootstrap-{i}": BrokerMetadata(f"bootstrap-{i}", host, port, None)
            for i, (host, port, _family) in enumerate(self.client.hosts)
        }
        self.client.force_metadata_update()  # answered by the refresh it wakes (counted above)
        return True


class Views:
    """The worker's clients' views, watched until `stop`."""

    def __init__(self, clients: dict[str, AIOKafkaConsumer | AIOKafkaProducer], backoff: Backoff) -> None:
        self.watches = [Rebootstrap(name, client_of(c), backoff) for name, c in clients.items()]

    async def run(self, stop: asyncio.Event) -> None:
        loop = asyncio.get_running_loop()
        while True:
            try:
                await asyncio.wait_for(stop.wait(), LOOK_SECONDS)
                return
            except TimeoutError:
                pass
            for one in self.watches:
                one.check(loop.time())
