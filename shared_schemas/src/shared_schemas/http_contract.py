"""What both services' OpenAPI documents say alike: the error body, the statuses the
gateway can answer any operation with, and the parameters every caller sends (the
caller's id, path ids, paging).

Documentation only: each service still checks its input itself, with its own clear 400s
(the framework's checks would answer with generic messages, and cost the hot read path).
tests/contract runs schemathesis over both documents, through the gateway, to hold the
documents and the services together (docs/decisions/0015)."""

from __future__ import annotations

import uuid
from typing import Annotated, Any

import msgspec
from litestar.openapi.datastructures import ResponseSpec
from litestar.params import HeaderParameter, Parameter, QueryParameter

from shared_schemas.cursors import DEFAULT_LIMIT, MAX_LIMIT
from shared_schemas.ids import UUID_PATTERN, parse_uuid


class ErrorBody(msgspec.Struct):
    """Every error, 4xx or 5xx, from a service or the gateway."""

    detail: str


# Anchored: a JSON Schema pattern matches anywhere in the value.
_UUID_SCHEMA: dict[str, Any] = {"type": "string", "format": "uuid", "pattern": f"^{UUID_PATTERN}$"}
# The parameters below are typed `str | None` so a bad or missing value reaches the
# handler (one clear 400 of its own); `one_of: None` drops the `null` that type implies.
_UNNULLED = {"one_of": None}


def uuid_field(description: str) -> Any:
    """A body field that is a UUID in its canonical form, typed `str` (msgspec's own
    `uuid.UUID` also takes 32 hex digits without hyphens, which the document does not
    allow): msgspec checks the pattern, the handler makes the UUID."""
    return msgspec.Meta(description=description, pattern=f"^{UUID_PATTERN}$")


def id_param(description: str) -> Any:
    """A path parameter that is a UUID (typed `str`: the handler parses it)."""
    return Parameter(description=description, schema_extra=_UUID_SCHEMA)


def caller_problem(raw: str | None) -> tuple[uuid.UUID | None, str]:
    """The caller's id from X-User-ID, or None and what is wrong with it (each service
    raises its own 400 with that detail)."""
    if not raw:
        return None, "X-User-ID header is required"
    user = parse_uuid(raw)
    return user, "" if user is not None else "X-User-ID must be a UUID"


CallerHeader = Annotated[
    str | None,
    HeaderParameter(
        name="X-User-ID",
        required=True,
        description="The caller's user id (a UUID): there is no sign-in.",
        schema_extra={**_UNNULLED, **_UUID_SCHEMA},
    ),
]
Limit = Annotated[
    str | None,
    QueryParameter(
        name="limit",
        required=False,
        description="Items per page.",
        schema_extra={**_UNNULLED, "type": "integer", "minimum": 1, "maximum": MAX_LIMIT, "default": DEFAULT_LIMIT},
    ),
]
NextCursor = Annotated[
    str | None,
    QueryParameter(
        name="next_cursor",
        required=False,
        description=(
            "The `next_cursor` of the previous page, as issued (opaque): any other value is a 400; empty is none."
        ),
        schema_extra={**_UNNULLED, "type": "string"},
    ),
]
PrevCursor = Annotated[
    str | None,
    QueryParameter(
        name="prev_cursor",
        required=False,
        description=(
            "A `prev_cursor` (or a stream event's `id`), as issued: the items immediately newer than it."
            " Not with `next_cursor`."
        ),
        schema_extra={**_UNNULLED, "type": "string"},
    ),
]

# What the gateway in front of every operation may answer by itself.
_GATEWAY: dict[int, str] = {
    400: "A malformed request.",
    408: "The client sent its request too slowly.",
    413: "A body over 64 KiB.",
    414: "The URI is too long.",
    429: "Too many requests from this user or this address: retry after `Retry-After` seconds.",
    431: "The request's headers are too large.",
    502: "The service could not be reached.",
    503: "A store or the service is unavailable: retry after `Retry-After` seconds.",
    504: "The service did not answer in time.",
}


def errors(own: dict[int, str]) -> dict[int, ResponseSpec]:
    """The error responses of one operation: its own (`own`, status -> when) and the
    gateway's, each with the one error body."""
    merged = {**_GATEWAY, **own}
    return {
        status: ResponseSpec(ErrorBody, description=merged[status], generate_examples=False)
        for status in sorted(merged)
    }
