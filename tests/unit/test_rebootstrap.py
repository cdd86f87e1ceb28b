"""The worker's watch on its Kafka clients' views (timeline/worker/rebootstrap.py): after
three refreshes in a row that no broker of the view answered, the bootstrap servers
take the view's brokers' place (aiokafka then asks them) and a refresh is asked for at once,
no sooner again than the backoff allows; a refresh that succeeds ends it. The real
clients and a killed broker: tests/faults/test_kafka_view.py."""

from __future__ import annotations

from collections.abc import Callable

from timeline.worker.rebootstrap import FAILED_REFRESHES, Rebootstrap
from timeline.worker.retry import Backoff


class FakeCluster:
    def __init__(self) -> None:
        self._brokers: dict = {2: "broker 2"}
        self.listeners: list[Callable[[object], None]] = []
        self.failed = 0

    def add_listener(self, listener: Callable[[object], None]) -> None:
        self.listeners.append(listener)

    def failed_update(self, exception: BaseException | None) -> None:
        self.failed += 1

    def update_metadata(self) -> None:  # as ClusterMetadata: listeners told of a view
        self._brokers = {1: "broker 1", 3: "broker 3"}
        for listener in self.listeners:
            listener(self)


class FakeClient:
    def __init__(self) -> None:
        self.cluster = FakeCluster()
        self.forced = 0
        self.hosts = [("127.0.0.1", 19192, 0), ("127.0.0.1", 19194, 0)]

    def force_metadata_update(self) -> bool:
        self.forced += 1
        return True


def test_a_view_a_broker_answers_is_left_alone() -> None:
    client = FakeClient()
    watch = Rebootstrap("consumer", client, Backoff(1, 30))
    for now in range(20):
        client.cluster.failed_update(None)  # one broker of the view down, another answering
        client.cluster.update_metadata()
        assert not watch.check(float(now))
    assert client.forced == 0 and client.cluster._brokers
    assert client.cluster.failed == 20  # aiokafka's own handling still runs


def test_a_dead_view_is_forgotten_and_refreshed_once_then_after_a_backoff() -> None:
    client = FakeClient()
    watch = Rebootstrap("consumer", client, Backoff(1, 30))
    for _ in range(FAILED_REFRESHES - 1):
        client.cluster.failed_update(None)
    assert not watch.check(0.0)  # two failures: not yet
    client.cluster.failed_update(None)
    assert watch.check(0.0)
    assert {(b.host, b.port) for b in client.cluster._brokers.values()} == {("127.0.0.1", 19192), ("127.0.0.1", 19194)}
    assert client.forced == 1
    client.cluster.failed_update(None)  # the bootstrap servers did not answer either
    assert not watch.check(0.5)  # within the backoff (0.75 to 1.25 s)
    assert watch.check(1.3)
    assert client.forced == 2
    client.cluster.update_metadata()  # a view at last: the count starts again
    assert not watch.check(100.0)
    assert watch.rebootstraps == 2 and watch.attempts == 0
