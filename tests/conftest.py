"""Test-run wide hooks."""

from __future__ import annotations

import pytest


def pytest_collection_modifyitems(items: list[pytest.Item]) -> None:
    """The fault suite runs last: it kills and restarts the stack's parts, and while each
    case leaves the stack whole (and asserts so), nothing else should share its minutes."""
    items.sort(key=lambda item: "/faults/" in str(item.path))
