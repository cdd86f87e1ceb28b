"""The fault suite (tests/faults): each case breaks a real part of the running stack
while a stream of tweets flows, and checks every follower's timeline afterwards."""

from __future__ import annotations

import httpx
import pytest

from tests.faults import harness
from tests.support import GATEWAY


@pytest.fixture
async def group():
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10.0) as http:
        yield await harness.Group.make(http)


def pytest_terminal_summary(terminalreporter) -> None:
    if harness.CONVERGENCE:
        terminalreporter.section("fault suite: seconds from the end of each fault to converged timelines")
        for case, seconds in harness.CONVERGENCE.items():
            terminalreporter.write_line(f"{case:<48} {seconds:6.1f}")
