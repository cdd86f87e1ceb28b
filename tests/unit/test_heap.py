"""Every long-lived process ends its start-up the same way (shared_schemas.heap)."""

from __future__ import annotations

import gc
import inspect
import io
import tokenize

import pytest

from shared_schemas import heap
from timeline.api import app as timeline_app
from timeline.worker import __main__ as worker
from users.api import app as users_app
from users.relay import __main__ as relay


@pytest.fixture
def restored():
    threshold = gc.get_threshold()
    yield
    gc.unfreeze()
    gc.set_threshold(*threshold)


def test_settling_freezes_the_heap_and_makes_young_collections_rarer(restored) -> None:
    assert gc.get_threshold()[0] < heap.YOUNG_COLLECTION_EVERY

    heap.settle()

    assert gc.get_threshold()[0] == heap.YOUNG_COLLECTION_EVERY
    assert gc.get_freeze_count() > 0  # what was alive at start-up


def _code(module) -> str:
    """The module's code as its tokens, comments and strings left out."""
    tokens = tokenize.generate_tokens(io.StringIO(inspect.getsource(module)).readline)
    return "".join(t.string for t in tokens if t.type in (tokenize.NAME, tokenize.OP))


@pytest.mark.parametrize("module", [users_app, timeline_app, worker, relay], ids=lambda m: m.__name__)
def test_every_service_process_settles_its_heap(module) -> None:
    assert "heap.settle" in _code(module), module.__name__
