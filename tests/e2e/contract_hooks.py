"""Schemathesis hooks of tests/e2e/test_openapi_contract.py: the one rule of the
documents that JSON Schema cannot state.

A cursor (or a stream's Last-Event-ID) is valid only when the server issued it (signed,
opaque), and the timeline's two cursors exclude each other. So a request the document calls valid carries a cursor
the service really issued (CONTRACT_USERS_CURSOR, CONTRACT_TIMELINE_CURSOR, fetched just
before the run) and at most one of the two; invalid requests are left as generated. The
refusal of every cursor the server did not issue is tested by the contract tests."""

from __future__ import annotations

import os
from typing import Any

import schemathesis

ISSUED = {
    "/api/v1/users/{user_id}/tweets": "CONTRACT_USERS_CURSOR",
    "/api/v1/timeline": "CONTRACT_TIMELINE_CURSOR",
    "/api/v1/timeline/stream": "CONTRACT_TIMELINE_CURSOR",  # Last-Event-ID: a stream's ids are cursors
}


@schemathesis.hook
def before_call(ctx: Any, case: Any, **kwargs: Any) -> None:
    variable = ISSUED.get(case.operation.path)
    if variable is None or case.meta is None or not case.meta.generation.mode.is_positive:
        return
    if case.headers and "Last-Event-ID" in case.headers:
        case.headers["Last-Event-ID"] = os.environ[variable]
    if not case.query:
        return
    if "next_cursor" in case.query and "prev_cursor" in case.query:
        del case.query["prev_cursor"]
    for name in ("next_cursor", "prev_cursor"):
        if name in case.query:
            case.query[name] = os.environ[variable]
