"""The HTTP face of a process that serves no API (the relay, the worker): `/metrics`,
`/health` and `/ready`, answered by the process's own event loop.

prometheus_client's `start_http_server` answers from a thread of its own, on any path:
a probe of it passes while the loop that does the work is stuck. Answered by the loop,
`/health` fails when the loop does not come round, and `/ready` says whether the process
has started its work (its Kafka clients)."""

from __future__ import annotations

from collections.abc import Callable

from aiohttp import web
from prometheus_client import CONTENT_TYPE_LATEST, REGISTRY, generate_latest


async def serve(port: int, addr: str, ready: Callable[[], bool]) -> web.AppRunner:
    """Listen on `addr:port` until the returned runner's `cleanup()`."""

    async def metrics(_: web.Request) -> web.Response:
        return web.Response(body=generate_latest(REGISTRY), headers={"Content-Type": CONTENT_TYPE_LATEST})

    async def health(_: web.Request) -> web.Response:
        return web.json_response({"status": "ok"})

    async def is_ready(_: web.Request) -> web.Response:
        if ready():
            return web.json_response({"status": "ready"})
        return web.json_response({"detail": "starting: not connected to its stores yet"}, status=503)

    app = web.Application()
    app.router.add_get("/metrics", metrics)
    app.router.add_get("/health", health)
    app.router.add_get("/ready", is_ready)
    runner = web.AppRunner(app, access_log=None)
    await runner.setup()
    await web.TCPSite(runner, addr, port).start()
    return runner
