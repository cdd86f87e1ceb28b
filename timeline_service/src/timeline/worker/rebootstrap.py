"""A Kafka client whose view of the cluster names only dead brokers asks the bootstrap
servers again, as a new client would.

aiokafka refreshes its view only from the brokers that view names (aio-libs/aiokafka#459,
open; Java's client had the same gap, KAFKA-7931, and librdkafka 2.10 added a
re-bootstrap). After every broker restarted, a view taken while one broker alone was up
names that broker only; `KAFKA_METADATA_MAX_AGE_MS` widens it again within seconds, but
if that broker dies first, the worker's consumer is stuck until it returns, with the
other brokers up (seen in the fault suite: no delivery for three minutes).
docs/decisions/0019.
"""

from __future__ import annotations

import asyncio
import logging
import time
from collections.abc import Callable
from typing import Protocol

from aiokafka import AIOKafkaConsumer, AIOKafkaProducer

log = logging.getLogger("timeline.worker")

# Views refresh every KAFKA_METADATA_MAX_AGE_MS even when idle (aiokafka's synchronizer),
# and at once after an error: this many periods without one that succeeded means every
# broker the view names is unreachable.
PERIODS_WITHOUT_A_VIEW = 3


class Cluster(Protocol):
    def add_listener(self, listener: Callable[[object], None]) -> None: ...


class Client(Protocol):
    """What of aiokafka's AIOKafkaClient this uses: its view, and its bootstrap."""

    cluster: Cluster

    async def bootstrap(self) -> None: ...


def client_of(kafka: AIOKafkaConsumer | AIOKafkaProducer) -> Client:
    """The AIOKafkaClient inside a producer (public `client`) or a consumer (`_client`:
    aiokafka has no public name for it)."""
    return getattr(kafka, "client", None) or kafka._client


class Rebootstrap:
    """Watches one client's view; when no refresh has succeeded for `after` seconds,
    fetches a view from the bootstrap servers (AIOKafkaClient.bootstrap: the first that
    answers). The consumer's group coordinator and fetcher find the live brokers in it
    on their next try."""

    def __init__(self, name: str, client: Client, after: float, clock: Callable[[], float] = time.monotonic) -> None:
        self.name, self.client, self.after, self.clock = name, client, after, clock
        self.refreshed = clock()
        self.rebootstraps = 0
        client.cluster.add_listener(self._refreshed)  # called on every view that succeeded

    def _refreshed(self, _cluster: object) -> None:
        self.refreshed = self.clock()

    def stale(self) -> bool:
        return self.clock() - self.refreshed > self.after

    async def check(self) -> bool:
        """Bootstrap again if the view is stale; True if that gave a view."""
        if not self.stale():
            return False
        self.rebootstraps += 1
        try:
            await self.client.bootstrap()
        except Exception as exc:  # noqa: BLE001 - every bootstrap server down too: try again later
            log.warning(
                "kafka view stale and no bootstrap server answered",
                extra={"client": self.name, "stale_s": round(self.clock() - self.refreshed, 1), "error": repr(exc)},
            )
            return False
        log.warning("kafka view was stale; took a new one from the bootstrap servers", extra={"client": self.name})
        return True


async def watch(watches: list[Rebootstrap], period: float, stop: asyncio.Event) -> None:
    """Check every `period` seconds until `stop`."""
    while not stop.is_set():
        try:
            await asyncio.wait_for(stop.wait(), period)
        except TimeoutError:
            pass
        for one in watches:
            await one.check()


def watching(
    clients: dict[str, AIOKafkaConsumer | AIOKafkaProducer], metadata_max_age_ms: int, stop: asyncio.Event
) -> asyncio.Task[None]:
    """Start watching started clients' views: the worker's consumer and producer."""
    period = metadata_max_age_ms / 1000
    watches = [Rebootstrap(name, client_of(c), PERIODS_WITHOUT_A_VIEW * period) for name, c in clients.items()]
    return asyncio.create_task(watch(watches, period, stop))
