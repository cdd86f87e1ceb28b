"""The stack's PostgreSQL databases, one of them made to fail for a test."""

from __future__ import annotations

import contextlib
import uuid
from collections.abc import AsyncIterator

import asyncpg
from sqlalchemy.engine import make_url

from tests.support import unique_name
from users.services import accounts


async def stars_on_two_databases(db) -> list:
    """Two new users whose rows live on different databases."""
    stars: dict[int, object] = {}
    while len(stars) < 2:
        star = await accounts.create_user(db, unique_name("Star"))
        stars.setdefault(db.map.for_user(star.user_id), star)
    return list(stars.values())


@contextlib.asynccontextmanager
async def refusing_connections(db, user: uuid.UUID) -> AsyncIterator[None]:
    """The database holding `user` refuses connections (its sessions ended) meanwhile."""
    url = make_url(db.dsns[db.map.for_user(user)])
    admin = await asyncpg.connect(url.set(drivername="postgresql", database="postgres").render_as_string(False))
    closed = f'ALTER DATABASE "{url.database}" WITH ALLOW_CONNECTIONS'
    try:
        await admin.execute(f"{closed} false")
        await admin.execute(
            "SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = $1 AND pid <> pg_backend_pid()",
            url.database,
        )
        yield
    finally:
        await admin.execute(f"{closed} true")
        await admin.close()
