"""The three ways of running the stack run the same things: the local stack
(deploy/local), docker-compose.yml with the two Dockerfiles, and the Kubernetes
manifests (deploy/k8s) name one Kafka release and start each process with one command
(bar the addresses: host, port, number of workers). Offline: PyYAML only."""

from __future__ import annotations

import inspect
import json
import re
import shlex
from pathlib import Path

import pytest
import uvicorn
import yaml

from shared_schemas.internal_api import IDLE_CONNECTION_SECONDS

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"

# compose service -> (Kubernetes workload, the Dockerfile of its image)
PROCESSES = {
    "users-api": ("users-api", "users_service/Dockerfile"),
    "relay": ("relay", "users_service/Dockerfile"),
    "migrate": ("users-migrate", "users_service/Dockerfile"),
    "topics": ("users-create-topics", "users_service/Dockerfile"),
    "timeline-api": ("timeline-api", "timeline_service/Dockerfile"),
    "worker": ("worker", "timeline_service/Dockerfile"),
}
# Where the processes listen and how many there are: the only flags allowed to differ.
GATEWAY_TEMPLATE = "deploy/nginx/gateway.conf.template"
ADDRESS_FLAGS = {"--host", "--port", "--workers"}


def _read(path: str) -> str:
    return (ROOT / path).read_text()


def _one(pattern: str, text: str, where: str) -> str:
    found = re.findall(pattern, text)
    assert len(found) == 1, f"{where}: expected one match of {pattern!r}, found {found}"
    return found[0]


@pytest.fixture(scope="module")
def compose_services() -> dict:
    return yaml.safe_load(_read("docker-compose.yml"))["services"]


@pytest.fixture(scope="module")
def k8s_commands() -> dict[str, list[str]]:
    commands = {}
    for path in sorted((K8S / "base").glob("*.yaml")):
        for doc in yaml.safe_load_all(path.read_text()):
            if doc and doc.get("kind") in ("Deployment", "Job"):
                container = doc["spec"]["template"]["spec"]["containers"][0]
                commands[doc["metadata"]["name"]] = container.get("command")
    return commands


def _dockerfile_cmd(dockerfile: str) -> list[str]:
    text = re.sub(r"\\\n", " ", _read(dockerfile))
    return json.loads(_one(r"(?m)^CMD (\[.*\])\s*$", text, dockerfile))


def _compose_command(services: dict, name: str) -> list[str]:
    command = services[name].get("command")
    return command if command is not None else _dockerfile_cmd(PROCESSES[name][1])


def _options(args: list[str]) -> dict[str, str | bool]:
    """--flag value pairs (a flag followed by another flag or nothing is True)."""
    options: dict[str, str | bool] = {}
    for i, arg in enumerate(args):
        if arg.startswith("--"):
            following = args[i + 1] if i + 1 < len(args) else "--"
            options[arg] = following if not following.startswith("--") else True
    return options


def test_one_kafka_release_everywhere(compose_services: dict) -> None:
    strimzi = [
        doc["spec"]["kafka"]["version"]
        for doc in yaml.safe_load_all((K8S / "infra" / "kafka" / "kafka.yaml").read_text())
        if doc and doc["kind"] == "Kafka"
    ]
    versions = {
        "deploy/local/env.sh KAFKA_VERSION": _one(
            r"KAFKA_VERSION:=([0-9.]+)\}", _read("deploy/local/env.sh"), "env.sh"
        ),
        "deploy/local/kafka/pom.xml": _one(
            r"<kafka.version>([^<]+)</kafka.version>", _read("deploy/local/kafka/pom.xml"), "pom.xml"
        ),
        "docker-compose.yml": compose_services["kafka"]["image"].removeprefix("apache/kafka:"),
        "deploy/k8s Strimzi Kafka": strimzi[0] if len(strimzi) == 1 else f"{len(strimzi)} Kafka resources",
        "README.md": _one(r"\| `KAFKA_VERSION` \| `([^`]+)` \|", _read("README.md"), "README.md"),
        "docs/docker.md": _one(r"`apache/kafka:([^`]+)`", _read("docs/docker.md"), "docs/docker.md"),
    }
    assert len(set(versions.values())) == 1, f"Kafka releases differ: {versions}"


@pytest.mark.parametrize("service", sorted(PROCESSES))
def test_compose_and_kubernetes_run_the_same_command(compose_services: dict, k8s_commands: dict, service: str) -> None:
    workload, _ = PROCESSES[service]
    assert _compose_command(compose_services, service) == k8s_commands[workload]


@pytest.mark.parametrize("service", ["migrate", "topics", "relay", "worker"])
def test_the_local_stack_runs_the_same_modules(compose_services: dict, service: str) -> None:
    command = _compose_command(compose_services, service)
    assert command[:2] == ["python", "-m"] and len(command) == 3, command
    assert f'"$PY" -m {command[2]}' in _read("deploy/local/stack.sh"), f"stack.sh does not run {command[2]}"


@pytest.mark.parametrize("service", ["users-api", "timeline-api"])
def test_the_local_stack_serves_the_apis_with_the_same_flags(compose_services: dict, service: str) -> None:
    command = _compose_command(compose_services, service)
    assert command[0] == "uvicorn"
    target = command[1]
    assert f"start_api {service} {target} " in _read("deploy/local/stack.sh")
    server = _read("deploy/local/api-server.sh").replace("\\\n", " ")
    local = shlex.split(_one(r'exec "\$VENV/bin/uvicorn" ([^;]*);;', server, "api-server.sh"))
    assert local[0] == "$target"
    mine, theirs = _options(local[1:]), _options(command[2:])
    for flags in (mine, theirs):
        for flag in ADDRESS_FLAGS:
            flags.pop(flag, None)
    assert mine == theirs, f"{service}: deploy/local/api-server.sh and the image differ"


def test_clients_let_idle_connections_go_before_the_apis_close_them() -> None:
    """A client that sends on a kept-alive connection the server is closing that instant
    fails the request (aiohttp: "Can not write request body"; a batch of rebuilds, 503
    to each reader, session 18): the services' clients of each other's internal API and
    the gateway's upstreams drop an idle connection before uvicorn's keep-alive ends."""
    server = _read("deploy/local/api-server.sh")
    flag = re.search(r"--timeout-keep-alive (\d+)", server)
    default = inspect.signature(uvicorn.Config).parameters["timeout_keep_alive"].default
    keep_alive = int(flag.group(1)) if flag else default
    assert IDLE_CONNECTION_SECONDS < keep_alive
    upstreams = re.findall(r"^upstream \w+ \{.*?keepalive_timeout (\d+)s;", _read(GATEWAY_TEMPLATE), re.M | re.S)
    assert len(upstreams) == 2 and all(int(seconds) < keep_alive for seconds in upstreams)
