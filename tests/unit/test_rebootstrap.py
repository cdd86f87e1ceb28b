"""The worker's watch on its Kafka clients' views (timeline/worker/rebootstrap.py): a
view that has not refreshed for three periods is taken again from the bootstrap
servers; a fresh one is left alone. The real clients and a killed broker:
tests/faults/test_kafka_view.py."""

from __future__ import annotations

from collections.abc import Callable

from timeline.worker.rebootstrap import Rebootstrap


class Clock:
    def __init__(self) -> None:
        self.now = 0.0

    def __call__(self) -> float:
        return self.now


class FakeCluster:
    def __init__(self) -> None:
        self.listeners: list[Callable[[object], None]] = []

    def add_listener(self, listener: Callable[[object], None]) -> None:
        self.listeners.append(listener)

    def refreshed(self) -> None:
        for listener in self.listeners:
            listener(self)


class FakeClient:
    def __init__(self, answers: bool = True) -> None:
        self.cluster = FakeCluster()
        self.answers, self.bootstraps = answers, 0

    async def bootstrap(self) -> None:
        self.bootstraps += 1
        if not self.answers:
            raise ConnectionError("Unable to bootstrap")
        self.cluster.refreshed()  # as AIOKafkaClient.bootstrap: a view, its listeners told


async def test_a_view_refreshed_in_time_is_left_alone() -> None:
    clock, client = Clock(), FakeClient()
    watch = Rebootstrap("consumer", client, after=15, clock=clock)
    for _ in range(10):  # refreshed every 5 s, for 50 s
        clock.now += 5
        client.cluster.refreshed()
        assert not await watch.check()
    assert client.bootstraps == 0


async def test_a_stale_view_is_taken_from_the_bootstrap_servers_once() -> None:
    clock, client = Clock(), FakeClient()
    watch = Rebootstrap("consumer", client, after=15, clock=clock)
    clock.now = 15
    assert not await watch.check()  # not past the limit yet
    clock.now = 15.1
    assert await watch.check()
    assert client.bootstraps == 1
    clock.now = 20  # the bootstrap's view counts as a refresh
    assert not await watch.check()
    assert client.bootstraps == 1


async def test_no_bootstrap_server_answering_is_tried_again_later() -> None:
    clock, client = Clock(), FakeClient(answers=False)
    watch = Rebootstrap("producer", client, after=15, clock=clock)
    clock.now = 16
    assert not await watch.check()
    clock.now = 21
    client.answers = True
    assert await watch.check()
    assert client.bootstraps == 2
