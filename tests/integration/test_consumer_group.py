"""Several timeline workers share the event partitions in one consumer group."""

from __future__ import annotations

import os

import pytest

from shared_schemas import topics
from tests.support import workers_own_partitions

WORKERS = int(os.environ.get("TIMELINE_WORKER_COUNT", "1"))


@pytest.mark.skipif(WORKERS < 2, reason="the stack runs one worker (make test runs two)")
async def test_every_worker_owns_some_partitions_and_none_is_owned_twice() -> None:
    owned = await workers_own_partitions(WORKERS)
    flat = [tp for member in owned for tp in member]
    expected = {(t.name, p) for t in topics.ALL if t.name in topics.TIMELINE_SOURCES for p in range(t.partitions)}
    assert len(flat) == len(set(flat)) and set(flat) == expected
