"""A database that cannot be reached is a 503 to retry, never a 500.

Whatever the driver says of it (a refused connection, a database not accepting
connections, one starting up, a connection ended under a query), the client learns
that a retry soon may succeed; a 500 would tell it the request itself is at fault.
"""

from __future__ import annotations

import httpx

from tests.integration.conftest import MAX_FOLLOWING
from tests.integration.databases import refusing_connections, stars_on_two_databases
from tests.support import GATEWAY, USERS_API
from users.services import follows


def _retry_soon(response: httpx.Response) -> None:
    assert response.status_code == 503, (response.status_code, response.text)
    assert response.json()["detail"], response.text
    assert response.headers["Retry-After"] == "1"


async def test_a_database_refusing_connections_is_a_503_on_every_path(db) -> None:
    # The writes go through SQLAlchemy, the internal reads through raw asyncpg pools:
    # both see the same refusals.
    reader, author = await stars_on_two_databases(db)
    await follows.follow(db, reader.user_id, author.user_id, MAX_FOLLOWING)
    who = {"X-User-ID": str(author.user_id)}
    home = {"homes": [{"user_id": str(reader.user_id), "items": 20}], "threshold": 100}
    async with httpx.AsyncClient(timeout=10) as http, refusing_connections(db, author.user_id):
        _retry_soon(await http.post(f"{GATEWAY}/api/v1/tweet", headers=who, json={"text": "refused"}))
        _retry_soon(await http.get(f"{GATEWAY}/api/v1/users/{author.user_id}"))
        _retry_soon(await http.post(f"{USERS_API}/internal/home-sources", json=home))
        _retry_soon(await http.get(f"{USERS_API}/internal/users/{author.user_id}/followers"))
    async with httpx.AsyncClient(timeout=10) as http:
        posted = await http.post(f"{GATEWAY}/api/v1/tweet", headers=who, json={"text": "accepted"})
    assert posted.status_code == 201, posted.text
