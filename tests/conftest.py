"""Test-run wide hooks."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite runs after the rest: it kills and restarts the stack's parts, and
    while each case leaves the stack whole (and asserts so), nothing else should share its
    minutes. The images come last of all: their worker joins the stack's consumer group
    and leaves it again, and no test should wait on that rebalance."""
    order = {"faults": 1, "images": 2}
    items.sort(key=lambda item: order.get(item.path.parent.name, 0))
