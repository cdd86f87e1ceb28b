from __future__ import annotations

import httpx
import pytest

from tests.e2e.test_users_contract_support import gw  # noqa: F401 - the contract tests' session fixture
from tests.e2e.timeline_client import Client
from tests.support import GATEWAY, unique_name


@pytest.fixture(scope="session")
def api() -> httpx.Client:
    with httpx.Client(base_url=GATEWAY, timeout=10.0) as client:
        yield client


@pytest.fixture
def new_user(api: httpx.Client):
    def make() -> str:
        response = api.post("/api/v1/users", json={"username": unique_name()})
        assert response.status_code == 201, response.text
        return response.json()["user_id"]

    return make


@pytest.fixture
async def client():
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=15.0) as http:
        yield Client(http)
