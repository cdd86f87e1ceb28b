"""The gateway's rules, as a client meets them."""

from __future__ import annotations

import asyncio
import os
import uuid
from pathlib import Path

import httpx
import pytest

from tests.support import GATEWAY, ROOT, stack, wait_for

JSON = "application/json"


def _json_error(response: httpx.Response, status: int) -> dict:
    assert response.status_code == status, response.text
    assert response.headers["content-type"].startswith(JSON), response.headers
    body = response.json()
    assert isinstance(body["detail"], str) and body["detail"]
    return body


@pytest.mark.parametrize("path", ["/", "/nope", "/health", "/metrics", "/api/v1/usersx", "/api/v2/timeline"])
def test_unrouted_paths_are_json_404s(api: httpx.Client, path: str) -> None:
    _json_error(api.get(path), 404)


@pytest.mark.parametrize(
    "path",
    [
        f"/internal/users/{uuid.uuid4()}",
        "/internal/tweets/batch",
        "/api/v1/internal/x",
        "/api/v1/users/../../internal/tweets/batch",
    ],
)
def test_internal_routes_are_never_reachable(api: httpx.Client, path: str) -> None:
    _json_error(api.get(path), 404)
    _json_error(api.post(path, json={"tweet_ids": []}), 404)


def test_a_body_over_64_kib_is_a_json_413(api: httpx.Client, new_user) -> None:
    user = new_user()
    body = b'{"text": "' + b"x" * (70 * 1024) + b'"}'
    _json_error(api.post("/api/v1/tweet", content=body, headers={"X-User-ID": user, "Content-Type": JSON}), 413)


def test_writing_to_the_timeline_is_a_json_405(api: httpx.Client) -> None:
    _json_error(api.post("/api/v1/timeline", json={}), 405)


@pytest.mark.parametrize(
    ("method", "path", "allowed"),
    [
        ("TRACE", "/api/v1/timeline", {"GET"}),  # refused by nginx before any route
        ("TRACE", f"/api/v1/follow/{uuid.uuid4()}", {"DELETE"}),
        ("TRACE", "/api/v1/tweet", {"POST"}),
        ("TRACE", f"/api/v1/users/{uuid.uuid4()}/tweets", {"GET"}),
        ("DELETE", "/api/v1/timeline", {"GET"}),  # refused by the gateway's route
        ("PUT", f"/api/v1/users/{uuid.uuid4()}", {"GET"}),  # refused by the service
        ("PATCH", f"/api/v1/tweet/{uuid.uuid4()}", {"DELETE"}),
    ],
)
def test_every_405_says_which_methods_the_resource_allows(
    api: httpx.Client, method: str, path: str, allowed: set[str]
) -> None:
    response = api.request(method, path)
    _json_error(response, 405)
    advertised = {m.strip() for m in response.headers["allow"].split(",")}
    assert allowed <= advertised <= allowed | {"HEAD", "OPTIONS"}, response.headers
    for other in advertised:  # each method named works through the gateway (the gateway once named HEAD)
        assert api.request(other, path).status_code != 405, (other, path, response.headers)


async def test_a_client_over_its_rate_gets_json_429_with_retry_after() -> None:
    client_id = str(uuid.uuid4())  # a client of its own, so no other test is throttled
    responses: list[httpx.Response] = []
    async with httpx.AsyncClient(base_url=GATEWAY, timeout=10) as http:
        # Rounds of 250 at once until one is limited (one round, on any machine seen so
        # far): how many fit in the burst of 100 depends on how fast they arrive.
        while len(responses) < 2_000 and not any(r.status_code == 429 for r in responses):
            responses += await asyncio.gather(
                *(http.get("/api/v1/timeline", headers={"X-User-ID": client_id}) for _ in range(250))
            )
    limited = [r for r in responses if r.status_code == 429]
    assert limited, f"{len(responses)} requests, 250 at a time, never exceeded a burst of 100"
    _json_error(limited[0], 429)
    assert int(limited[0].headers["retry-after"]) >= 1
    assert any(r.status_code == 404 for r in responses)  # the first ones went through (unknown user)


def test_a_stopped_service_gives_a_json_error_not_an_html_page(api: httpx.Client, new_user) -> None:
    user = new_user()
    stack("stop-app", "timeline-api")
    try:
        response = api.get("/api/v1/timeline", headers={"X-User-ID": user})
        assert response.status_code in (502, 503, 504)
        _json_error(response, response.status_code)
    finally:
        stack("start-apps")
    assert api.get("/api/v1/timeline", headers={"X-User-ID": user}).status_code == 200


def test_the_request_id_reaches_the_gateway_and_service_logs(api: httpx.Client) -> None:
    request_id = f"test-{uuid.uuid4().hex}"
    response = api.post("/api/v1/users", json={"username": "bad name!"}, headers={"X-Request-ID": request_id})
    assert response.status_code == 400 and response.headers["x-request-id"] == request_id
    logs = Path(os.environ.get("STACK_DIR", ROOT / ".local")) / "logs"
    for name in ("nginx.log", "users-api.log"):
        wait_for(
            lambda n=name: request_id in (logs / n).read_text(errors="replace"),
            timeout=5,
            what=f"{request_id} in {name}",
        )


def test_the_request_id_follows_a_delete_into_the_timeline_apis_log(api: httpx.Client, new_user) -> None:
    # The DELETE calls the Timeline API for the author's own home (read-your-writes):
    # that call's log line carries the DELETE's id, not one of its own.
    author, request_id = new_user(), f"test-{uuid.uuid4().hex}"
    tweet = api.post("/api/v1/tweet", json={"text": "doomed"}, headers={"X-User-ID": author}).json()["tweet_id"]
    headers = {"X-User-ID": author, "X-Request-ID": request_id}
    assert api.delete(f"/api/v1/tweet/{tweet}", headers=headers).status_code == 204
    log = Path(os.environ.get("STACK_DIR", ROOT / ".local")) / "logs" / "timeline-api.log"
    wait_for(lambda: request_id in log.read_text(errors="replace"), timeout=5, what=f"{request_id} in timeline-api.log")


def test_the_gateway_makes_a_request_id_when_the_client_sends_none(api: httpx.Client) -> None:
    first, second = api.get("/nope"), api.get("/nope")
    assert first.headers["x-request-id"] and first.headers["x-request-id"] != second.headers["x-request-id"]


@pytest.mark.parametrize("service,path", [("users", "/api/v1/users"), ("timeline", "/api/v1/timeline")])
def test_each_service_publishes_its_openapi_through_the_gateway(api: httpx.Client, service: str, path: str) -> None:
    response = api.get(f"/api/v1/docs/{service}/openapi.json")
    assert response.status_code == 200, response.text
    document = response.json()
    assert any(p.startswith(path) for p in document["paths"])
    assert all(p.startswith("/api/v1/") for p in document["paths"])  # no /internal, /metrics, /health
