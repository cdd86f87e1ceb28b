"""The worst request one can craft for each public endpoint, and the CPU it costs.

Each crafted request is sent one at a time through the gateway, many times over, and
the CPU the processes on its path spent (the APIs, nginx, Redis, PostgreSQL: bench/cpu.py
reads it from /proc before and after) is divided by the count. The hostile ones are
refused (400); the heavy valid ones (a full page of long tweets) are answered. API.md
("Limits") promises a few milliseconds of CPU for any of them.

Used by tests/e2e/test_hostile_input.py (a generous bound, on the test stack) and by
`make bench` (the figures, in docs/benchmarks.md).
"""

from __future__ import annotations

import json
import time
import uuid
from dataclasses import dataclass, field

import httpx

from bench import cpu

# The kinds of process a request's path runs through (bench/cpu.py names them); the
# relay, worker and Kafka work after a write, not for the request.
PATH_KINDS = ("api", "users_api", "nginx", "redis", "postgres")
MAX_BODY = 64 * 1024  # the gateway's limit
TWEET = 280  # code points


@dataclass(frozen=True)
class Crafted:
    endpoint: str  # "POST /api/v1/tweet"
    what: str
    method: str
    path: str
    expect: int
    body: bytes | None = None
    caller: bool = False  # sends X-User-ID (a user of its own, so no rate limit is shared)
    headers: dict[str, str] = field(default_factory=dict)


def _padded(prefix: str, filler: str, suffix: str = '"}') -> bytes:
    """A JSON body just under the gateway's 64 KiB limit: `prefix`, `filler` repeated, `suffix`."""
    room = MAX_BODY - 64 - len(prefix.encode()) - len(suffix.encode())
    return (prefix + filler * (room // len(filler.encode())) + suffix).encode()


def _many_keys() -> bytes:
    """Thousands of fields the body does not have, then a blank text (so a 400 either way)."""
    keys = ",".join(f'"k{i}":[0]' for i in range(6000))
    return ("{" + keys).encode()[: MAX_BODY - 64].rsplit(b",", 1)[0] + b', "text": " "}'


def crafted(owner: str, tweet: str) -> list[Crafted]:
    """The requests, given a user `owner` with more than a page of 280-character tweets
    (one of them `tweet`) in the listing and home."""
    nested = b"[" * 1100
    marks = '"a' + "\u0301\u0323" * 15_000 + '"'
    users, tweets_, follow = "POST /api/v1/users", "POST /api/v1/tweet", "POST /api/v1/follow"
    return [
        Crafted(users, "username of 60 KB", "POST", "/api/v1/users", 400, _padded('{"username": "', "x")),
        Crafted(users, "1,100 nested arrays", "POST", "/api/v1/users", 400, nested),
        Crafted(users, "6,000 unknown fields", "POST", "/api/v1/users", 400, _many_keys()),
        Crafted(
            "GET /api/v1/users/{id}", "8 KB id", "GET", "/api/v1/users/" + "a" * 7000, 400
        ),  # the gateway's URI limit is 8 KB
        Crafted(
            "GET /api/v1/users/{id}/tweets",
            "a full page: 100 tweets of 280 characters",
            "GET",
            f"/api/v1/users/{owner}/tweets?limit=100",
            200,
        ),
        Crafted(follow, "1,100 nested arrays", "POST", "/api/v1/follow", 400, nested, caller=True),
        Crafted(follow, "id of 60 KB", "POST", "/api/v1/follow", 400, _padded('{"follow_user_id": "', "0"), True),
        Crafted("DELETE /api/v1/follow/{id}", "8 KB id", "DELETE", "/api/v1/follow/" + "a" * 7000, 400, caller=True),
        Crafted(
            tweets_, "60 KB of combining marks", "POST", "/api/v1/tweet", 400, f'{{"text": {marks}}}'.encode(), True
        ),
        Crafted(
            tweets_,
            "the longest text normalized: 1,120 code points of marks",
            "POST",
            "/api/v1/tweet",
            400,
            json.dumps({"text": "a" + "\u0301" * (4 * TWEET - 1)}).encode(),
            True,
        ),
        Crafted(tweets_, "60 KB of \\u escapes", "POST", "/api/v1/tweet", 400, _padded('{"text": "', "\\u00e9"), True),
        Crafted(tweets_, "1,100 nested arrays", "POST", "/api/v1/tweet", 400, nested, caller=True),
        Crafted(tweets_, "6,000 unknown fields", "POST", "/api/v1/tweet", 400, _many_keys(), caller=True),
        Crafted(
            "DELETE /api/v1/tweet/{id}", "not the caller's tweet", "DELETE", f"/api/v1/tweet/{tweet}", 404, caller=True
        ),
        Crafted(
            "GET /api/v1/timeline",
            "a full page: 100 tweets of 280 characters",
            "GET",
            "/api/v1/timeline?limit=100",
            200,
            headers={"X-User-ID": owner},
        ),
        Crafted(
            "GET /api/v1/timeline",
            "a made-up caller",
            "GET",
            "/api/v1/timeline?limit=100",
            404,
            headers={"X-User-ID": str(uuid.uuid4())},
        ),
    ]


def _send(client: httpx.Client, method: str, path: str, **kwargs) -> httpx.Response:
    """One request; over the gateway's per-user rate (one user sends many here), wait
    and send it again."""
    while True:
        response = client.request(method, path, **kwargs)
        if response.status_code != 429:
            return response
        time.sleep(float(response.headers.get("retry-after", "1")))


def prepare(client: httpx.Client, tweets: int = 101) -> tuple[str, str]:
    """A user with `tweets` tweets of 280 characters (more than a page of 100)."""
    name = f"h_{uuid.uuid4().hex[:12]}"
    response = client.post("/api/v1/users", json={"username": name})
    response.raise_for_status()
    owner = response.json()["user_id"]
    tweet = ""
    for i in range(tweets):
        text = f"{i:03d} " + "é" * (TWEET - 4)
        response = _send(client, "POST", "/api/v1/tweet", json={"text": text}, headers={"X-User-ID": owner})
        response.raise_for_status()
        tweet = response.json()["tweet_id"]
    return owner, tweet


def new_caller(client: httpx.Client) -> str:
    response = client.post("/api/v1/users", json={"username": f"c_{uuid.uuid4().hex[:12]}"})
    response.raise_for_status()
    return response.json()["user_id"]


def cost(client: httpx.Client, request: Crafted, repeat: int) -> dict[str, float]:
    """µs of CPU per request by kind of process on its path, and their total."""
    headers = {**request.headers}
    if request.caller:
        headers["X-User-ID"] = new_caller(client)
    if request.body is not None:
        headers["Content-Type"] = "application/json"
    _send(client, request.method, request.path, content=request.body, headers=headers)  # warm
    before = cpu.snapshot()
    for _ in range(repeat):
        response = _send(client, request.method, request.path, content=request.body, headers=headers)
        if response.status_code != request.expect:
            raise AssertionError(f"{request.endpoint} ({request.what}): {response.status_code} {response.text[:200]}")
    used = cpu.per_request(before, cpu.snapshot(), repeat) or {}
    figures = {kind: used.get(kind, 0.0) for kind in PATH_KINDS}
    figures["path_total"] = round(sum(figures.values()), 1)
    return figures


def run(client: httpx.Client, repeat: int, say=print) -> list[dict]:
    """Every crafted request's figures, worst first within each endpoint."""
    owner, tweet = prepare(client)
    rows = []
    for request in crafted(owner, tweet):
        figures = cost(client, request, repeat)
        rows.append({"endpoint": request.endpoint, "what": request.what, "status": request.expect, **figures})
        say(
            f"{request.endpoint} ({request.what}) -> {request.expect}: "
            f"{figures['path_total'] / 1000:.2f} ms of CPU a request"
        )
    return rows
