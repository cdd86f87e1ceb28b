"""CPU per request of an ASGI app called directly, without an HTTP server: the quickest
way to see what a change to the read path costs (docs/benchmarks.md, "A second pass").

    python -m bench.inprocess timeline.api.app:create_app [REQUESTS] [REQUEST FILE]
    python -m bench.inprocess bench.minimal_app:create_app
    python -m bench.inprocess users.api.app:create_app 3000 .local/bench/writes.requests

Against the stack `make run` started, after a `make bench` (which loaded the data and
wrote the request files: user, path and, for a POST, its JSON body per line). 32 requests at a time on uvloop, as the
load generator keeps 32 in flight; three rounds, each printing requests per second and
µs of this process's CPU per request. Real Redis, so only compare runs of one sitting.
The service writes its request log lines to stderr (send them to /dev/null) and wants
PROMETHEUS_MULTIPROC_DIR set to a fresh folder, as the stack runs it.
"""

from __future__ import annotations

import asyncio
import importlib
import sys
import time

import uvloop

from bench.config import load

CONCURRENCY = 32


def _requests(path: str) -> list[tuple[dict, bytes]]:
    """(ASGI scope, body) per line of the file: a line with a body is a POST of it."""
    requests = []
    for line in open(path, encoding="utf-8"):
        user, target, *rest = line.rstrip("\n").split("\t")
        body = rest[0].encode() if rest and rest[0] else b""
        route, _, query = target.partition("?")
        headers = [(b"host", b"bench"), (b"x-user-id", user.encode()), (b"x-request-id", b"bench")]
        if body:
            headers += [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
        requests.append(
            (
                {
                    "type": "http",
                    "asgi": {"version": "3.0"},
                    "http_version": "1.1",
                    "method": "POST" if body else "GET",
                    "scheme": "http",
                    "path": route,
                    "raw_path": route.encode(),
                    "query_string": query.encode(),
                    "root_path": "",
                    "headers": headers,
                    "client": ("127.0.0.1", 1),
                    "server": ("127.0.0.1", 2),
                },
                body,
            )
        )
    return requests


async def _run(app, scopes: list[tuple[dict, bytes]], requests: int) -> None:
    statuses: dict[int, int] = {}

    async def client(k: int, n: int) -> None:
        for i in range(n):
            scope, body = scopes[(k * 997 + i) % len(scopes)]

            async def receive(body: bytes = body) -> dict:
                return {"type": "http.request", "body": body, "more_body": False}

            async def send(message: dict) -> None:
                if message["type"] == "http.response.start":
                    statuses[message["status"]] = statuses.get(message["status"], 0) + 1

            await app(dict(scope), receive, send)

    for hook in getattr(app, "on_startup", []):
        result = hook()
        if asyncio.iscoroutine(result):
            await result
    await asyncio.gather(*(client(k, 100) for k in range(CONCURRENCY)))  # warm pools and caches
    for _ in range(3):
        wall, cpu = time.perf_counter(), time.process_time()
        await asyncio.gather(*(client(k, requests // CONCURRENCY) for k in range(CONCURRENCY)))
        wall, cpu = time.perf_counter() - wall, time.process_time() - cpu
        print(f"{requests / wall:8.0f} requests/s, {cpu * 1e6 / requests:6.1f} µs CPU per request, statuses {statuses}")


def main() -> int:
    if len(sys.argv) < 2:
        print(__doc__, file=sys.stderr)
        return 2
    module, factory = sys.argv[1].split(":")
    requests = int(sys.argv[2]) if len(sys.argv) > 2 else 20_000
    path = sys.argv[3] if len(sys.argv) > 3 else str(load().work_dir / "service_page_1,_without_celebrities.requests")
    app = getattr(importlib.import_module(module), factory)()
    uvloop.run(_run(app, _requests(path), requests))
    return 0


if __name__ == "__main__":
    sys.exit(main())
