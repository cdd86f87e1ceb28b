"""Offline checks of the Docker packaging: docker-compose.yml, the Dockerfiles and
the gateway template agree with each other. No Docker needed (PyYAML only), so a
broken compose file is caught on machines that cannot run it."""

from __future__ import annotations

import re
from pathlib import Path

import pytest
import yaml

ROOT = Path(__file__).resolve().parents[2]
COMPOSE = ROOT / "docker-compose.yml"
TEMPLATE = "deploy/nginx/gateway.conf.template"

INFRA = {"postgres-shard-0", "postgres-shard-1", "redis", "kafka", "gateway"}
ONE_SHOT = {"migrate", "topics"}
APPS = {"users-api", "timeline-api", "relay", "worker"}
# Which image (by Dockerfile) each project service runs.
IMAGE_OF = {
    "users-api": "users_service/Dockerfile",
    "relay": "users_service/Dockerfile",
    "migrate": "users_service/Dockerfile",
    "topics": "users_service/Dockerfile",
    "timeline-api": "timeline_service/Dockerfile",
    "worker": "timeline_service/Dockerfile",
}


@pytest.fixture(scope="module")
def compose() -> dict:
    # safe_load resolves the x-* anchors and `<<` merge keys like compose does.
    return yaml.safe_load(COMPOSE.read_text())


@pytest.fixture(scope="module")
def services(compose: dict) -> dict:
    return compose["services"]


def _env(service: dict) -> dict[str, str]:
    env = service.get("environment") or {}
    if isinstance(env, list):  # the "- KEY=value" form
        env = dict(item.split("=", 1) if "=" in item else (item, "") for item in env)
    return {str(k): "" if v is None else str(v) for k, v in env.items()}


def _final_stage(dockerfile: Path) -> list[tuple[str, str]]:
    """(INSTRUCTION, arguments) of the last stage, continuation lines joined."""
    text = re.sub(r"\\\n", " ", dockerfile.read_text())
    instructions = []
    for line in text.splitlines():
        line = line.strip()
        if line and not line.startswith("#"):
            word, _, rest = line.partition(" ")
            instructions.append((word.upper(), rest.strip()))
    last_from = max(i for i, (word, _) in enumerate(instructions) if word == "FROM")
    return instructions[last_from:]


def _template_text() -> str:
    """The template without its comments (a # at line start or after a blank)."""
    lines = (ROOT / TEMPLATE).read_text().splitlines()
    return "\n".join(re.sub(r"(^|\s)#.*", "", line) for line in lines)


def _template_vars() -> set[str]:
    # envsubst replaces $NAME and ${NAME}; the template's placeholders are upper
    # case, nginx's own variables ($host, $request_id, ...) lower case. Comments
    # may mention shell variables ($STACK_DIR): they are not placeholders.
    text = _template_text()
    return set(re.findall(r"\$\{([A-Za-z_][A-Za-z0-9_]*)\}", text)) | set(re.findall(r"\$([A-Z_][A-Z0-9_]*)", text))


def test_every_service_of_the_stack_exists(services: dict) -> None:
    missing = (INFRA | ONE_SHOT | APPS) - set(services)
    assert not missing, f"docker-compose.yml lacks {sorted(missing)}"


def test_official_images_for_the_infrastructure(services: dict) -> None:
    assert services["postgres-shard-0"]["image"].startswith("postgres:16")
    assert services["postgres-shard-1"]["image"].startswith("postgres:16")
    assert services["redis"]["image"].startswith("redis:7")
    assert services["kafka"]["image"].startswith("apache/kafka:")
    assert services["gateway"]["image"].startswith("nginx:")
    for name in INFRA - {"gateway"}:
        assert "healthcheck" in services[name], f"{name} has no healthcheck"


def test_each_shard_has_its_own_volume(compose: dict, services: dict) -> None:
    mounts = [services[f"postgres-shard-{i}"]["volumes"][0].split(":")[0] for i in (0, 1)]
    assert len(set(mounts)) == 2
    assert set(mounts) <= set(compose.get("volumes") or {})


def test_kafka_is_a_single_kraft_node_without_auto_create(services: dict) -> None:
    env = _env(services["kafka"])
    assert env["KAFKA_PROCESS_ROLES"] == "broker,controller"
    assert env["KAFKA_CONTROLLER_QUORUM_VOTERS"].startswith(f"{env['KAFKA_NODE_ID']}@")
    assert env["KAFKA_AUTO_CREATE_TOPICS_ENABLE"] == "false"
    assert env["KAFKA_OFFSETS_TOPIC_REPLICATION_FACTOR"] == "1"
    assert env["KAFKA_TRANSACTION_STATE_LOG_REPLICATION_FACTOR"] == "1"
    assert "kafka-broker-api-versions.sh" in " ".join(services["kafka"]["healthcheck"]["test"])


@pytest.mark.parametrize("name", sorted(IMAGE_OF))
def test_build_points_at_an_existing_dockerfile_with_root_context(services: dict, name: str) -> None:
    build = services[name]["build"]
    assert build["context"] == ".", "the build context must be the repo root (shared_schemas, requirements.txt)"
    assert build["dockerfile"] == IMAGE_OF[name]
    assert (ROOT / build["dockerfile"]).is_file()


def test_every_build_in_the_file_is_valid(services: dict) -> None:
    for name, service in services.items():
        if "build" in service:
            assert service["build"]["context"] == ".", name
            assert (ROOT / service["build"]["dockerfile"]).is_file(), name


@pytest.mark.parametrize("dockerfile", sorted(set(IMAGE_OF.values())))
def test_dockerfile_runs_as_non_root_with_a_healthcheck(dockerfile: str) -> None:
    stage = _final_stage(ROOT / dockerfile)
    users = [args for word, args in stage if word == "USER"]
    assert users, f"{dockerfile}: the runtime stage has no USER"
    user = users[-1].split(":")[0]
    assert user not in {"root", "0"}, f"{dockerfile}: runs as {users[-1]}"
    healthchecks = [args for word, args in stage if word == "HEALTHCHECK"]
    assert healthchecks and "/health" in healthchecks[-1]
    assert any(word == "EXPOSE" for word, _ in stage)
    assert any(word == "CMD" for word, _ in stage)
    assert any(word == "COPY" and "/opt/venv" in args for word, args in stage)


def test_one_shot_jobs_wait_for_their_stores_and_do_not_restart(services: dict) -> None:
    for name in ONE_SHOT:
        assert services[name]["restart"] == "no", name
    assert set(services["migrate"]["depends_on"]) == {"postgres-shard-0", "postgres-shard-1"}
    assert set(services["topics"]["depends_on"]) == {"kafka"}
    for name in ONE_SHOT:
        for dep in services[name]["depends_on"].values():
            assert dep["condition"] == "service_healthy", name


def test_apps_wait_for_the_jobs_and_healthy_stores(services: dict) -> None:
    expected_jobs = {"users-api": {"migrate"}, "relay": {"migrate", "topics"}, "worker": {"topics"}}
    for name in APPS | {"gateway"}:
        deps = services[name]["depends_on"]
        assert isinstance(deps, dict), f"{name}: use the long depends_on form with conditions"
        for dep, spec in deps.items():
            assert dep in services, f"{name} depends on unknown {dep}"
            want = "service_completed_successfully" if dep in ONE_SHOT else "service_healthy"
            assert spec["condition"] == want, f"{name} -> {dep}"
    for name, jobs in expected_jobs.items():
        assert jobs <= set(services[name]["depends_on"]), name


def test_scalable_services_have_no_fixed_name_or_host_port(services: dict) -> None:
    for name in APPS | ONE_SHOT:
        assert "container_name" not in services[name], name
        assert "ports" not in services[name], name


def test_background_processes_check_their_metrics_port(services: dict) -> None:
    relay, worker = _env(services["relay"]), _env(services["worker"])
    assert relay["USERS_RELAY_METRICS_ADDR"] == "0.0.0.0"
    assert worker["TIMELINE_WORKER_METRICS_ADDR"] == "0.0.0.0"
    assert relay["USERS_RELAY_METRICS_PORT"] in " ".join(services["relay"]["healthcheck"]["test"])
    assert worker["TIMELINE_WORKER_METRICS_PORT"] in " ".join(services["worker"]["healthcheck"]["test"])


def _settings_env_names(path: str) -> set[str]:
    text = (ROOT / path).read_text()
    return set(re.findall(r"""(?:environ\.get|_env|_list)\(\s*["']([A-Z][A-Z0-9_]*)["']""", text))


@pytest.mark.parametrize(
    "settings,image",
    [
        ("users_service/src/users/settings.py", "users_service/Dockerfile"),
        ("timeline_service/src/timeline/settings.py", "timeline_service/Dockerfile"),
    ],
)
def test_every_setting_is_wired_into_compose(services: dict, settings: str, image: str) -> None:
    names = _settings_env_names(settings)
    assert names, f"no settings found in {settings}"
    given: set[str] = set()
    for service in services.values():
        if service.get("build", {}).get("dockerfile") == image:
            given |= set(_env(service))
    assert not names - given, f"settings read but never set in docker-compose.yml: {sorted(names - given)}"


def test_every_interpolation_has_a_default() -> None:
    # `docker compose up` must work with an empty environment: ${VAR:-default} only.
    text = re.sub(r"\$\$", "", COMPOSE.read_text())
    bare = [m for m in re.findall(r"\$\{[^}]*\}|\$[A-Za-z_]\w*", text) if ":-" not in m]
    assert not bare, f"interpolations without a default: {bare}"


def test_gateway_mounts_the_template(services: dict) -> None:
    gateway = services["gateway"]
    mounts = [v.split(":") if isinstance(v, str) else [v["source"], v["target"]] for v in gateway["volumes"]]
    targets = {Path(src).as_posix().removeprefix("./"): dst for src, dst, *_ in mounts}
    assert TEMPLATE in targets, f"gateway does not mount {TEMPLATE}"
    assert targets[TEMPLATE].startswith("/etc/nginx/templates/")
    assert targets[TEMPLATE].endswith(".template")
    assert (ROOT / TEMPLATE).is_file()
    # Its own main config: 8,192 connections a worker (live streams hold two each).
    assert targets.get("deploy/nginx/nginx.conf") == "/etc/nginx/nginx.conf"
    assert any(str(p).endswith(":8080") for p in gateway["ports"])
    # Loopback unless told otherwise.
    assert all(str(p).startswith("${GATEWAY_HOST_ADDRESS:-127.0.0.1}:") for p in gateway["ports"])


def test_gateway_gets_every_template_variable(services: dict) -> None:
    wanted = _template_vars()
    assert {"GATEWAY_PORT", "USERS_UPSTREAM", "TIMELINE_UPSTREAM"} <= wanted
    env = _env(services["gateway"])
    missing = wanted - set(env)
    assert not missing, f"gateway lacks {sorted(missing)} (left unsubstituted, nginx would fail)"
    assert env["USERS_UPSTREAM"] == "users-api:8001"
    assert env["TIMELINE_UPSTREAM"] == "timeline-api:8002"
    # The image's entrypoint substitutes only the names its filter (a regex on the
    # name) matches; each placeholder must match it, or it stays in the config.
    pattern = env.get("NGINX_ENVSUBST_FILTER", "")
    for name in wanted:
        assert re.search(pattern, name), f"NGINX_ENVSUBST_FILTER does not let {name} through"


def test_template_fits_the_http_context() -> None:
    # conf.d/*.conf is included inside http {}: the template must not open its own.
    text = _template_text()
    assert not re.search(r"^\s*(http|events)\s*\{", text, re.M)
