"""The growth suite changes the shard map of the shared test stack: a test that fails
half-way must not leave a move unfinished for the tests after it."""

from __future__ import annotations

import asyncio

import pytest

from tests.shards import shards_cli


@pytest.fixture(autouse=True)
async def no_move_left_unfinished():
    yield
    done = await asyncio.to_thread(shards_cli, "resume")
    assert done.returncode == 0, done.stdout + done.stderr
