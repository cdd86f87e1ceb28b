"""The bench's own servers: its apps (through deploy/local/api-server.sh, as the stack
serves the services) and copies of the gateway in front of them (the project's nginx
template, rendered as deploy/local/infra.sh renders it, on a port of the bench's)."""

from __future__ import annotations

import os
import shutil
import signal
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager

import httpx

from bench.config import ROOT, Config
from bench.progress import say


def _wait(url: str, proc: subprocess.Popen, what: str, timeout: float = 60.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise RuntimeError(f"{what} exited with {proc.returncode}")
        try:
            if httpx.get(url, timeout=1.0).status_code < 500:
                return
        except httpx.HTTPError:
            pass
        time.sleep(0.2)
    raise RuntimeError(f"{what} did not answer {url} within {timeout:.0f}s")


def _stop(proc: subprocess.Popen) -> None:
    """End the process group this module started (by its pid, never by name)."""
    if proc.poll() is None:
        os.killpg(proc.pid, signal.SIGTERM)
        try:
            proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            os.killpg(proc.pid, signal.SIGKILL)
            proc.wait()


@contextmanager
def app(cfg: Config, target: str, port: int, name: str) -> Iterator[str]:
    """Serve `target` (MODULE:FACTORY) with the Timeline API's server and worker count."""
    log = open(cfg.work_dir / f"{name}.log", "ab")
    env = {**os.environ, "PYTHONPATH": str(ROOT) + os.pathsep + os.environ.get("PYTHONPATH", "")}
    proc = subprocess.Popen(
        ["bash", str(ROOT / "deploy/local/api-server.sh"), target, str(port), str(cfg.api_workers)],
        cwd=ROOT,
        env=env,
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/health", proc, name)
        say(f"{name} serving on :{port} ({cfg.api_workers} worker(s), {os.environ.get('API_SERVER', 'uvicorn')})")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.close()


def _render(template: str, values: dict[str, str]) -> str:
    for key, value in values.items():
        template = template.replace("${" + key + "}", value)
    return template


@contextmanager
def gateway(cfg: Config, upstream_port: int, port: int, name: str) -> Iterator[str]:
    """The project's gateway config, with GET /api/v1/timeline sent to `upstream_port`."""
    prefix = cfg.work_dir / name
    conf = prefix / "conf"
    for sub in ("conf", "logs", "run", "tmp"):
        (prefix / sub).mkdir(parents=True, exist_ok=True)
    shutil.copy(ROOT / "deploy/local/nginx.conf", conf / "nginx.conf")
    template = (ROOT / "deploy/nginx/gateway.conf.template").read_text()
    (conf / "gateway.conf").write_text(
        _render(
            template,
            {
                "GATEWAY_PORT": str(port),
                "USERS_UPSTREAM": f"127.0.0.1:{cfg.users_api_port}",
                "TIMELINE_UPSTREAM": f"127.0.0.1:{upstream_port}",
                # The bench's requests rotate over thousands of users, as the real gateway's do;
                # the limit is the stack's, so both gateways do the same work per request.
                "GATEWAY_RATE_LIMIT": os.environ.get("GATEWAY_RATE_LIMIT", "50r/s"),
                "GATEWAY_RATE_BURST": os.environ.get("GATEWAY_RATE_BURST", "100"),
                # All of the load comes from one address: as bench/run.sh does for the
                # stack's gateway, no per-address limit gets in the way.
                "GATEWAY_ADDRESS_RATE_LIMIT": "1000000r/s",
                "GATEWAY_ADDRESS_RATE_BURST": "1000000",
                "GATEWAY_CONNECTIONS_PER_ADDRESS": "60000",
            },
        )
    )
    nginx = shutil.which("nginx") or "/usr/sbin/nginx"
    log = open(prefix / "nginx.log", "ab")  # the JSON access log, as the stack's nginx.log
    proc = subprocess.Popen(
        [nginx, "-p", f"{prefix}/", "-c", str(conf / "nginx.conf"), "-e", "stderr", "-g", "daemon off;"],
        stdout=log,
        stderr=subprocess.STDOUT,
        start_new_session=True,
    )
    try:
        _wait(f"http://127.0.0.1:{port}/api/v1/nothing", proc, f"{name} nginx")
        yield f"http://127.0.0.1:{port}"
    finally:
        _stop(proc)
        log.close()
