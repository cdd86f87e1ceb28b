"""Parsing of the ids a request carries: the caller's X-User-ID, path ids, cursors."""

from __future__ import annotations

import uuid

from shared_schemas.cursors import CursorCodec, InvalidCursor, parse_limit
from shared_schemas.http_contract import caller_problem
from shared_schemas.ids import parse_uuid
from users.domain.errors import Invalid, NotFound


def caller_id(raw: str | None) -> uuid.UUID:
    user, problem = caller_problem(raw)
    if user is None:
        raise Invalid(problem)
    return user


def path_id(raw: str, what: str) -> uuid.UUID:
    parsed = parse_uuid(raw)
    if parsed is None:
        raise Invalid(f"{what} must be a UUID")
    return parsed


def tweet_path_id(raw: str) -> uuid.UUID:
    """The tweet a DELETE names: API.md's table gives that route 404 alone, and an id
    that is not a UUID names no tweet (docs/decisions/0006)."""
    parsed = parse_uuid(raw)
    if parsed is None:
        raise NotFound("tweet not found")
    return parsed


def page_params(codec: CursorCodec, limit: str | None, cursor: str | None) -> tuple[int, uuid.UUID | None]:
    try:
        size = parse_limit(limit)
        return size, codec.decode(cursor) if cursor else None
    except InvalidCursor as exc:
        raise Invalid(str(exc)) from exc
    except ValueError as exc:
        raise Invalid(str(exc)) from exc
