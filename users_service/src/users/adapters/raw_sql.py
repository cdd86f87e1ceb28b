"""SQLAlchemy Core statements run on plain asyncpg connections.

The hottest statements (a tweet's publication, a home's rebuild) run hundreds of times a
second, and SQLAlchemy's async layer (a greenlet switch, a pool checkout with events, a
transaction object, result processing) cost more CPU than the statement itself. They
are still written once, as Core, next to the tables; compiled here for asyncpg
(`$1::UUID`), once, and run with their parameters in order (docs/decisions/0018).
"""

from __future__ import annotations

from typing import Any

import asyncpg
from sqlalchemy.dialects.postgresql.asyncpg import dialect as asyncpg_dialect
from sqlalchemy.sql import ClauseElement

_DIALECT = asyncpg_dialect()


class RawStatement:
    def __init__(self, statement: ClauseElement) -> None:
        compiled = statement.compile(dialect=_DIALECT)
        self.sql = str(compiled)
        self.names: tuple[str, ...] = tuple(getattr(compiled, "positiontup", None) or ())

    def _args(self, params: dict[str, Any]) -> list[Any]:
        return [params[name] for name in self.names]

    async def fetchrow(self, conn: asyncpg.Connection, **params: Any) -> asyncpg.Record | None:
        return await conn.fetchrow(self.sql, *self._args(params))

    async def fetch(self, conn: asyncpg.Connection, **params: Any) -> list[asyncpg.Record]:
        return await conn.fetch(self.sql, *self._args(params))

    async def fetchval(self, conn: asyncpg.Connection, **params: Any) -> Any:
        return await conn.fetchval(self.sql, *self._args(params))

    async def execute(self, conn: asyncpg.Connection, **params: Any) -> None:
        await conn.execute(self.sql, *self._args(params))
