"""Offline checks of the Kubernetes deployment (deploy/k8s) and the observability files
(deploy/observability). No cluster needed: every kustomization is rendered with a
pinned kustomize (deploy/k8s/tools.sh builds it with Go on first use), every core
object is validated against the Kubernetes OpenAPI schemas shipped by
kubernetes-validate (strict: unknown fields fail), and the custom resources of the
operators (Strimzi, CloudNativePG, KEDA) get a hand-written check of the fields their
CRDs require. Then the manifests are checked against each other and against the code:
selectors, autoscaler targets, DSNs vs database clusters, topics vs shared_schemas,
settings vs what the code reads, metrics vs what the code exports.
"""

from __future__ import annotations

import copy
import functools
import json
import re
import shutil
import subprocess
from pathlib import Path
from urllib.parse import urlsplit

import kubernetes_validate
import kubernetes_validate.utils
import pytest
import yaml

from shared_schemas import topics

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
OBS = ROOT / "deploy" / "observability"

# Every kustomization that can be applied or built on its own.
VARIANTS = {
    "base": K8S / "base",
    "infra": K8S / "infra",
    "local": K8S / "overlays" / "local",
    "production": K8S / "overlays" / "production",
    "production-keda": K8S / "overlays" / "production-keda",
}
# The full deployments (application + stateful parts).
FULL = ("local", "production", "production-keda")
# The oldest Kubernetes minor we claim to support, and the newest schema shipped.
K8S_VERSIONS = ("1.31", "1.37")

USERS_IMAGE = "ghcr.io/example/users-service"
TIMELINE_IMAGE = "ghcr.io/example/timeline-service"
PLACEHOLDER_ANNOTATION = "timeline.example.com/placeholder"
# The Secrets overlays/production expects to be created out of band (docs/kubernetes.md).
EXTERNAL_SECRETS = {"users-db", "users-cursor", "timeline-cursor", "users-db-credentials"}

# Custom resources: (apiVersion, kind) of the operators' CRDs this deployment uses.
CUSTOM_KINDS = {
    ("kafka.strimzi.io/v1", "Kafka"),
    ("kafka.strimzi.io/v1", "KafkaNodePool"),
    ("kafka.strimzi.io/v1", "KafkaTopic"),
    ("postgresql.cnpg.io/v1", "Cluster"),
    ("keda.sh/v1alpha1", "ScaledObject"),
}
# CronJob: users-shards, suspended, run by hand (deploy/k8s/base/shards.yaml).
WORKLOAD_KINDS = ("Deployment", "StatefulSet", "Job", "CronJob")


# ---------------------------------------------------------------------------------
# Rendering
# ---------------------------------------------------------------------------------
@pytest.fixture(scope="session")
def kustomize_cmd() -> list[str]:
    """`kustomize build` as a command prefix: the pinned one from tools.sh; failing that
    (no Go, no module proxy), a kubectl with its built-in kustomize."""
    proc = subprocess.run(["bash", str(K8S / "tools.sh"), "kustomize"], capture_output=True, text=True, timeout=900)
    if proc.returncode == 0:
        return [proc.stdout.strip(), "build"]
    kubectl = shutil.which("kubectl")
    if kubectl:
        return [kubectl, "kustomize"]
    pytest.fail(f"no kustomize: deploy/k8s/tools.sh failed and there is no kubectl\n{proc.stderr}")


def _build(cmd: list[str], path: Path) -> list[dict]:
    proc = subprocess.run([*cmd, str(path)], capture_output=True, text=True, timeout=120)
    assert proc.returncode == 0, f"kustomize build {path.relative_to(ROOT)} failed:\n{proc.stderr}"
    return [doc for doc in yaml.safe_load_all(proc.stdout) if doc]


@pytest.fixture(scope="session")
def rendered(kustomize_cmd: list[str]) -> dict[str, list[dict]]:
    return {name: _build(kustomize_cmd, path) for name, path in VARIANTS.items()}


def _of(docs: list[dict], kind: str) -> list[dict]:
    return [d for d in docs if d["kind"] == kind]


def _named(docs: list[dict], kind: str, name: str) -> dict | None:
    return next((d for d in docs if d["kind"] == kind and d["metadata"]["name"] == name), None)


def _pod_template(doc: dict) -> dict:
    spec = doc["spec"]["jobTemplate"]["spec"] if doc["kind"] == "CronJob" else doc["spec"]
    return spec["template"]


def _pod_spec(doc: dict) -> dict:
    return _pod_template(doc)["spec"]


def _containers(doc: dict) -> list[dict]:
    spec = _pod_spec(doc)
    return [*spec.get("initContainers", []), *spec["containers"]]


def _secret_data(secret: dict) -> dict[str, str]:
    import base64

    data = {k: base64.b64decode(v).decode() for k, v in (secret.get("data") or {}).items()}
    data.update(secret.get("stringData") or {})
    return data


def _env(docs: list[dict], container: dict) -> dict[str, str | None]:
    """The container's environment: envFrom ConfigMaps/Secrets of the same render, then
    env. A value from a Secret that is not in the render (production) is None."""
    env: dict[str, str | None] = {}
    for source in container.get("envFrom", []):
        if "configMapRef" in source:
            cm = _named(docs, "ConfigMap", source["configMapRef"]["name"])
            assert cm is not None, f"ConfigMap {source['configMapRef']['name']} not rendered"
            env.update(cm.get("data") or {})
        else:
            name = source["secretRef"]["name"]
            secret = _named(docs, "Secret", name)
            if secret is None:
                assert name in EXTERNAL_SECRETS, f"Secret {name} neither rendered nor documented"
                env[f"<secret {name}>"] = None
            else:
                env.update(_secret_data(secret))
    for item in container.get("env", []):
        env[item["name"]] = item.get("value")
    return env


def _workloads(docs: list[dict]) -> list[dict]:
    return [d for d in docs if d["kind"] in WORKLOAD_KINDS]


def _selects(selector: dict, labels: dict) -> bool:
    """A Service's plain selector, or a LabelSelector (matchLabels/matchExpressions)."""
    if "matchLabels" in selector or "matchExpressions" in selector:
        match_labels, expressions = selector.get("matchLabels", {}), selector.get("matchExpressions", [])
    else:
        match_labels, expressions = selector, []
    if not match_labels and not expressions:
        return False  # an empty selector would select everything: never intended here
    if any(labels.get(key) != value for key, value in match_labels.items()):
        return False
    for expr in expressions:
        present, value = expr["key"] in labels, labels.get(expr["key"])
        ok = {
            "In": present and value in expr.get("values", []),
            "NotIn": not present or value not in expr.get("values", []),
            "Exists": present,
            "DoesNotExist": not present,
        }[expr["operator"]]
        if not ok:
            return False
    return True


def _pod_labels(doc: dict) -> dict:
    return _pod_template(doc)["metadata"].get("labels", {})


# ---------------------------------------------------------------------------------
# Schema validation
# ---------------------------------------------------------------------------------
# kubernetes-validate re-reads its (1.8 MB) definitions file for every object; the
# files never change, so keep them parsed. Validation itself is untouched.
kubernetes_validate.utils.schema_contents = functools.lru_cache(maxsize=None)(kubernetes_validate.utils.schema_contents)


def test_every_variant_renders(rendered: dict[str, list[dict]]) -> None:
    for name, docs in rendered.items():
        assert docs, f"{name} rendered nothing"
        keys = [(d["kind"], d["metadata"].get("namespace"), d["metadata"]["name"]) for d in docs]
        assert len(keys) == len(set(keys)), f"{name}: duplicate objects"
        for d in docs:
            if d["kind"] != "Namespace":
                assert d["metadata"].get("namespace") == "timeline", f"{name}: {d['kind']}/{d['metadata']['name']}"


@pytest.mark.parametrize("variant", list(VARIANTS))
@pytest.mark.parametrize("version", K8S_VERSIONS)
def test_core_objects_match_the_kubernetes_schemas(rendered: dict[str, list[dict]], variant: str, version: str) -> None:
    errors = []
    for doc in rendered[variant]:
        if (doc["apiVersion"], doc["kind"]) in CUSTOM_KINDS:
            continue  # checked by test_custom_resources_have_their_required_fields
        try:
            kubernetes_validate.validate(doc, version, strict=True)
        except kubernetes_validate.SchemaNotFoundError:
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: no schema for {doc['apiVersion']} in {version}")
        except kubernetes_validate.ValidationError as exc:
            path = ".".join(str(p) for p in exc.path)
            errors.append(f"{doc['kind']}/{doc['metadata']['name']}: {path}: {exc.message}")
    assert not errors, "\n".join(errors)


def test_the_schema_validation_catches_mistakes(rendered: dict[str, list[dict]]) -> None:
    """Guard against a validator that passes everything (e.g. no schemas found)."""
    deployment = copy.deepcopy(_named(rendered["base"], "Deployment", "users-api"))
    kubernetes_validate.validate(deployment, K8S_VERSIONS[-1], strict=True)
    typo = copy.deepcopy(deployment)
    typo["spec"]["template"]["spec"]["containers"][0]["readinesProbe"] = {"httpGet": {"path": "/ready", "port": 8001}}
    wrong_type = copy.deepcopy(deployment)
    wrong_type["spec"]["replicas"] = "two"
    for broken in (typo, wrong_type):
        with pytest.raises(kubernetes_validate.ValidationError):
            kubernetes_validate.validate(broken, K8S_VERSIONS[-1], strict=True)


# ---------------------------------------------------------------------------------
# Custom resources: the fields their CRDs require, and the ones this deployment relies
# on (Strimzi 1.x kafka.strimzi.io/v1, CloudNativePG 1.x, KEDA 2.x)
# ---------------------------------------------------------------------------------
def _get(doc: dict, path: str):
    node = doc
    for part in path.split("."):
        if not isinstance(node, dict) or part not in node:
            raise KeyError(path)
        node = node[part]
    return node


def _require(doc: dict, *paths: str) -> list[str]:
    missing = []
    for path in paths:
        try:
            value = _get(doc, path)
        except KeyError:
            missing.append(path)
        else:
            if value is None or value == "" or value == []:
                missing.append(path)
    return [f"{doc['kind']}/{doc['metadata']['name']}: missing {p}" for p in missing]


def _only(doc: dict, path: str, allowed: set[str]) -> list[str]:
    unknown = set(_get(doc, path)) - allowed
    return [f"{doc['kind']}/{doc['metadata']['name']}: unknown field(s) {sorted(unknown)} in {path}"] if unknown else []


KAFKA_SPEC = {
    "kafka",
    "entityOperator",
    "cruiseControl",
    "kafkaExporter",
    "clusterCa",
    "clientsCa",
    "maintenanceTimeWindows",
}
KAFKA_SPEC_KAFKA = {
    "authorization",
    "brokerRackInitImage",
    "config",
    "image",
    "jmxOptions",
    "jvmOptions",
    "listeners",
    "livenessProbe",
    "logging",
    "metadataVersion",
    "metricsConfig",
    "quotas",
    "rack",
    "readinessProbe",
    "template",
    "tieredStorage",
    "version",
}  # no replicas/storage in v1: those live in the KafkaNodePools
LISTENER_TYPES = {"internal", "route", "tlsroute", "loadbalancer", "nodeport", "ingress", "cluster-ip"}
NODEPOOL_SPEC = {"replicas", "roles", "storage", "resources", "jvmOptions", "template"}
TOPIC_SPEC = {"partitions", "replicas", "config", "topicName"}
CNPG_SPEC = {
    "affinity",
    "backup",
    "bootstrap",
    "certificates",
    "description",
    "enablePDB",
    "enableSuperuserAccess",
    "env",
    "envFrom",
    "ephemeralVolumeSource",
    "ephemeralVolumesSizeLimit",
    "externalClusters",
    "failoverDelay",
    "imageCatalogRef",
    "imageName",
    "imagePullPolicy",
    "imagePullSecrets",
    "inheritedMetadata",
    "instances",
    "livenessProbeTimeout",
    "logLevel",
    "managed",
    "maxSyncReplicas",
    "minSyncReplicas",
    "monitoring",
    "nodeMaintenanceWindow",
    "plugins",
    "podSecurityContext",
    "podSelectorRefs",
    "postgresGID",
    "postgresUID",
    "postgresql",
    "primaryLease",
    "primaryUpdateMethod",
    "primaryUpdateStrategy",
    "priorityClassName",
    "probes",
    "projectedVolumeTemplate",
    "replica",
    "replicationSlots",
    "resources",
    "schedulerName",
    "seccompProfile",
    "securityContext",
    "serviceAccountName",
    "serviceAccountTemplate",
    "smartShutdownTimeout",
    "startDelay",
    "stopDelay",
    "storage",
    "superuserSecret",
    "switchoverDelay",
    "tablespaces",
    "topologySpreadConstraints",
    "walStorage",
}
SCALEDOBJECT_SPEC = {
    "advanced",
    "cooldownPeriod",
    "fallback",
    "idleReplicaCount",
    "initialCooldownPeriod",
    "maxReplicaCount",
    "minReplicaCount",
    "pollingInterval",
    "scaleTargetRef",
    "triggers",
}


def _check_kafka(doc: dict, docs: list[dict]) -> list[str]:
    errors = _require(doc, "spec", "spec.kafka", "spec.kafka.listeners")
    if errors:
        return errors
    errors += _only(doc, "spec", KAFKA_SPEC) + _only(doc, "spec.kafka", KAFKA_SPEC_KAFKA)
    for listener in doc["spec"]["kafka"]["listeners"]:
        for field in ("name", "port", "type", "tls"):
            if field not in listener:
                errors.append(f"Kafka listener {listener}: missing {field}")
        if listener.get("type") not in LISTENER_TYPES:
            errors.append(f"Kafka listener type {listener.get('type')!r}")
        if not re.fullmatch(r"[a-z0-9]{1,11}", str(listener.get("name", ""))):
            errors.append(f"Kafka listener name {listener.get('name')!r}")
    pools = [
        p
        for p in _of(docs, "KafkaNodePool")
        if p["metadata"]["labels"].get("strimzi.io/cluster") == doc["metadata"]["name"]
    ]
    roles = {role for pool in pools for role in pool["spec"]["roles"]}
    if roles != {"controller", "broker"}:
        errors.append(f"Kafka {doc['metadata']['name']}: KRaft needs controller and broker pools, has roles {roles}")
    return errors


def _check_nodepool(doc: dict, docs: list[dict]) -> list[str]:
    errors = _require(doc, "spec.replicas", "spec.roles", "spec.storage", "spec.storage.type")
    if errors:
        return errors
    errors += _only(doc, "spec", NODEPOOL_SPEC)
    if not set(doc["spec"]["roles"]) <= {"controller", "broker"}:
        errors.append(f"KafkaNodePool roles {doc['spec']['roles']}")
    storage = doc["spec"]["storage"]
    if storage["type"] not in {"ephemeral", "persistent-claim", "jbod"}:
        errors.append(f"KafkaNodePool storage type {storage['type']}")
    if storage["type"] == "jbod":
        for volume in storage.get("volumes", []):
            if volume.get("type") not in {"ephemeral", "persistent-claim"} or "id" not in volume:
                errors.append(f"KafkaNodePool volume {volume}")
        if sum(1 for v in storage.get("volumes", []) if v.get("kraftMetadata") == "shared") != 1:
            errors.append("KafkaNodePool: exactly one volume must hold the KRaft metadata")
    if not isinstance(doc["spec"]["replicas"], int) or doc["spec"]["replicas"] < 1:
        errors.append("KafkaNodePool replicas")
    errors += _strimzi_cluster_label(doc, docs)
    return errors


def _strimzi_cluster_label(doc: dict, docs: list[dict]) -> list[str]:
    cluster = doc["metadata"].get("labels", {}).get("strimzi.io/cluster")
    if _named(docs, "Kafka", cluster or "") is None:
        return [f"{doc['kind']}/{doc['metadata']['name']}: strimzi.io/cluster={cluster!r} names no Kafka"]
    return []


def _check_topic(doc: dict, docs: list[dict]) -> list[str]:
    errors = _require(doc, "spec", "spec.partitions", "spec.replicas")
    if errors:
        return errors
    errors += _only(doc, "spec", TOPIC_SPEC) + _strimzi_cluster_label(doc, docs)
    brokers = sum(p["spec"]["replicas"] for p in _of(docs, "KafkaNodePool") if "broker" in p["spec"]["roles"])
    if doc["spec"]["replicas"] > brokers:
        errors.append(f"KafkaTopic {doc['metadata']['name']}: {doc['spec']['replicas']} replicas > {brokers} brokers")
    min_isr = int(doc["spec"].get("config", {}).get("min.insync.replicas", 1))
    if min_isr > doc["spec"]["replicas"]:
        errors.append(f"KafkaTopic {doc['metadata']['name']}: min.insync.replicas > replicas")
    return errors


def _check_cnpg(doc: dict, docs: list[dict]) -> list[str]:
    errors = _require(
        doc,
        "metadata",
        "spec",
        "spec.instances",
        "spec.storage.size",
        "spec.bootstrap.initdb.database",
        "spec.bootstrap.initdb.owner",
        "spec.bootstrap.initdb.secret.name",
    )
    if errors:
        return errors
    errors += _only(doc, "spec", CNPG_SPEC)
    if not isinstance(doc["spec"]["instances"], int) or doc["spec"]["instances"] < 1:
        errors.append(f"Cluster {doc['metadata']['name']}: instances")
    if doc["spec"].get("primaryUpdateStrategy", "unsupervised") not in {"unsupervised", "supervised"}:
        errors.append("Cluster primaryUpdateStrategy")
    for key, value in doc["spec"].get("postgresql", {}).get("parameters", {}).items():
        if not isinstance(value, str):
            errors.append(f"Cluster {doc['metadata']['name']}: parameter {key} must be a string")
    secret_name = doc["spec"]["bootstrap"]["initdb"]["secret"]["name"]
    secret = _named(docs, "Secret", secret_name)
    if secret is not None:  # production: created out of band
        if secret.get("type") != "kubernetes.io/basic-auth":
            errors.append(f"Secret {secret_name}: CloudNativePG wants type kubernetes.io/basic-auth")
        if _secret_data(secret).get("username") != doc["spec"]["bootstrap"]["initdb"]["owner"]:
            errors.append(f"Secret {secret_name}: username must be the database owner")
    return errors


def _check_scaledobject(doc: dict, docs: list[dict]) -> list[str]:
    errors = _require(doc, "spec", "spec.scaleTargetRef", "spec.scaleTargetRef.name", "spec.triggers")
    if errors:
        return errors
    errors += _only(doc, "spec", SCALEDOBJECT_SPEC)
    spec = doc["spec"]
    if _named(docs, spec["scaleTargetRef"].get("kind", "Deployment"), spec["scaleTargetRef"]["name"]) is None:
        errors.append(f"ScaledObject targets missing {spec['scaleTargetRef']}")
    if spec.get("minReplicaCount", 0) > spec.get("maxReplicaCount", 100):
        errors.append("ScaledObject min > max")
    for trigger in spec["triggers"]:
        if "type" not in trigger or "metadata" not in trigger:
            errors.append(f"ScaledObject trigger {trigger}: needs type and metadata")
            continue
        if not all(isinstance(v, str) for v in trigger["metadata"].values()):
            errors.append(f"ScaledObject trigger {trigger['type']}: metadata values must be strings")
        needed = {"kafka": {"bootstrapServers", "consumerGroup"}, "cpu": {"value"}, "memory": {"value"}}.get(
            trigger["type"], set()
        )
        if needed - set(trigger["metadata"]):
            errors.append(
                f"ScaledObject trigger {trigger['type']}: missing {sorted(needed - set(trigger['metadata']))}"
            )
        if trigger["type"] in {"cpu", "memory"} and trigger.get("metricType") not in {"Utilization", "AverageValue"}:
            errors.append("ScaledObject cpu/memory trigger needs metricType")
    return errors


CR_CHECKS = {
    ("kafka.strimzi.io/v1", "Kafka"): _check_kafka,
    ("kafka.strimzi.io/v1", "KafkaNodePool"): _check_nodepool,
    ("kafka.strimzi.io/v1", "KafkaTopic"): _check_topic,
    ("postgresql.cnpg.io/v1", "Cluster"): _check_cnpg,
    ("keda.sh/v1alpha1", "ScaledObject"): _check_scaledobject,
}


@pytest.mark.parametrize("variant", list(VARIANTS))
def test_custom_resources_have_their_required_fields(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered[variant]
    errors = []
    for doc in docs:
        group = doc["apiVersion"].split("/")[0]
        if "." in group and not group.endswith("k8s.io"):  # a CRD's group, not a built-in one
            check = CR_CHECKS.get((doc["apiVersion"], doc["kind"]))
            if check is None:
                errors.append(f"unexpected custom resource {doc['apiVersion']} {doc['kind']}")
                continue
            if not re.fullmatch(r"[a-z0-9]([-a-z0-9]*[a-z0-9])?", doc["metadata"]["name"]):
                errors.append(f"{doc['kind']}/{doc['metadata']['name']}: not a DNS-1123 label")
            errors += check(doc, docs)
    assert not errors, "\n".join(errors)


def test_the_custom_resource_check_catches_mistakes(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["local"]
    topic = copy.deepcopy(_of(docs, "KafkaTopic")[0])
    del topic["spec"]["partitions"]
    assert _check_topic(topic, docs)
    cluster = copy.deepcopy(_of(docs, "Cluster")[0])
    cluster["spec"]["instancess"] = 3
    assert _check_cnpg(cluster, docs)


def test_the_stateful_parts_are_all_there(rendered: dict[str, list[dict]]) -> None:
    for variant in FULL:
        docs = rendered[variant]
        assert len(_of(docs, "Kafka")) == 1
        assert len(_of(docs, "Cluster")) >= 2, "one CloudNativePG Cluster per physical shard"
        assert _named(docs, "StatefulSet", "redis-cluster") is not None
        assert _named(docs, "Job", "redis-cluster-create") is not None
    prod = rendered["production"]
    assert all(c["spec"]["instances"] == 3 for c in _of(prod, "Cluster")), "a primary and two read replicas"
    assert {p["metadata"]["name"]: p["spec"]["roles"] for p in _of(prod, "KafkaNodePool")} == {
        "controller": ["controller"],
        "broker": ["broker"],
    }


# ---------------------------------------------------------------------------------
# Workloads
# ---------------------------------------------------------------------------------
@pytest.mark.parametrize("variant", FULL)
def test_every_deployment_has_probes_resources_and_runs_as_non_root(
    rendered: dict[str, list[dict]], variant: str
) -> None:
    docs = rendered[variant]
    errors = []
    deployments = _of(docs, "Deployment")
    assert {d["metadata"]["name"] for d in deployments} == {"users-api", "timeline-api", "relay", "worker", "gateway"}
    for doc in _workloads(docs):
        name = f"{doc['kind']}/{doc['metadata']['name']}"
        pod = _pod_spec(doc)
        psc = pod.get("securityContext", {})
        if psc.get("runAsNonRoot") is not True or not psc.get("runAsUser"):
            errors.append(f"{name}: pod securityContext must set runAsNonRoot and a non-zero runAsUser")
        if pod.get("automountServiceAccountToken") is not False:
            errors.append(f"{name}: no service account token needed")
        for container in _containers(doc):
            cname = f"{name}[{container['name']}]"
            csc = container.get("securityContext", {})
            if csc.get("allowPrivilegeEscalation") is not False or csc.get("capabilities", {}).get("drop") != ["ALL"]:
                errors.append(f"{cname}: no privilege escalation, drop ALL capabilities")
            if csc.get("runAsUser", psc.get("runAsUser")) in (None, 0):
                errors.append(f"{cname}: runs as root")
            resources = container.get("resources", {})
            for kind in ("requests", "limits"):
                if not {"cpu", "memory"} <= set(resources.get(kind, {})):
                    errors.append(f"{cname}: resources.{kind} needs cpu and memory")
            if doc["kind"] not in ("Job", "CronJob") and container in pod["containers"]:
                for probe in ("livenessProbe", "readinessProbe"):
                    if probe not in container:
                        errors.append(f"{cname}: no {probe}")
                ports = {p.get("name"): p["containerPort"] for p in container.get("ports", [])}
                for probe in ("startupProbe", "livenessProbe", "readinessProbe"):
                    action = container.get(probe, {})
                    for handler in ("httpGet", "tcpSocket"):
                        if handler in action:
                            port = action[handler]["port"]
                            assert port in ports or port in ports.values(), f"{cname}: {probe} port {port} not exposed"
    assert not errors, "\n".join(errors)


def test_api_probes_use_health_and_ready(rendered: dict[str, list[dict]]) -> None:
    # The relay and the worker too: their event loop answers these (a loop that is
    # stuck fails them), not prometheus_client's thread (shared_schemas/process_http.py).
    for name in ("users-api", "timeline-api", "relay", "worker"):
        container = _pod_spec(_named(rendered["base"], "Deployment", name))["containers"][0]
        assert container["livenessProbe"]["httpGet"]["path"] == "/health"
        assert container["readinessProbe"]["httpGet"]["path"] == "/ready"


@pytest.mark.parametrize("variant", FULL)
def test_services_select_pods_of_a_workload(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered[variant]
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for service in _of(docs, "Service"):
        selector = service["spec"]["selector"]
        matches = [w for w in workloads if _selects(selector, _pod_labels(w))]
        assert len(matches) == 1, f"Service {service['metadata']['name']} selects {len(matches)} workloads"
        (workload,) = matches
        ports = {
            p.get("name"): p["containerPort"] for c in _pod_spec(workload)["containers"] for p in c.get("ports", [])
        }
        for port in service["spec"]["ports"]:
            target = port.get("targetPort", port["port"])
            assert target in ports or target in ports.values(), (
                f"Service {service['metadata']['name']}: targetPort {target}"
            )
    for workload in workloads:
        # A Deployment's own selector must match its own pods.
        assert _selects(workload["spec"]["selector"], _pod_labels(workload)), workload["metadata"]["name"]


@pytest.mark.parametrize("variant", FULL)
def test_disruption_budgets_and_network_policies_select_pods(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered[variant]
    workloads = [d for d in docs if d["kind"] in ("Deployment", "StatefulSet")]
    for pdb in _of(docs, "PodDisruptionBudget"):
        assert any(_selects(pdb["spec"]["selector"], _pod_labels(w)) for w in workloads), pdb["metadata"]["name"]
    covered = {
        w["metadata"]["name"]
        for w in workloads
        for p in _of(docs, "PodDisruptionBudget")
        if _selects(p["spec"]["selector"], _pod_labels(w))
    }
    assert covered == {w["metadata"]["name"] for w in workloads}, "every long-running workload has a PDB"
    groups = _pod_groups(docs)
    for policy in _of(docs, "NetworkPolicy"):
        name = policy["metadata"]["name"]
        assert any(_selects(policy["spec"]["podSelector"], labels) for labels in groups.values()), name
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            for peer in rule.get("from", []) + rule.get("to", []):
                if "podSelector" in peer:
                    assert any(_selects(peer["podSelector"], labels) for labels in groups.values()), (
                        f"NetworkPolicy {name}: a peer selects no pods"
                    )


def _pod_groups(docs: list[dict]) -> dict[str, dict]:
    """Every kind of pod a render makes, by name, with its labels: the workloads' pods,
    each CloudNativePG cluster's instances, and Strimzi's Kafka pods."""
    groups = {w["metadata"]["name"]: _pod_labels(w) for w in _workloads(docs)}
    for cluster in _of(docs, "Cluster"):
        groups[cluster["metadata"]["name"]] = {"cnpg.io/cluster": cluster["metadata"]["name"]}
    for kafka in _of(docs, "Kafka"):
        groups[kafka["metadata"]["name"]] = {
            "strimzi.io/cluster": kafka["metadata"]["name"],
            "strimzi.io/kind": "Kafka",
        }
    return groups


# Who may open a connection to whom (the application's processes, by workload name; the
# stores by resource name). Everything else between them must be refused.
APP = (
    "gateway",
    "users-api",
    "timeline-api",
    "relay",
    "worker",
    "users-migrate",
    "users-create-topics",
    "users-shards",
)
SHARDS = ("users-shard-0", "users-shard-1")
ALLOWED = {
    ("gateway", "users-api", 8001),
    ("gateway", "timeline-api", 8002),
    ("timeline-api", "users-api", 8001),
    ("users-api", "timeline-api", 8002),  # an author's own home, as a tweet is answered
    ("worker", "users-api", 8001),
    *((source, shard, 5432) for source in ("users-api", "relay", "users-migrate", "users-shards") for shard in SHARDS),
    *((source, "events", 9092) for source in ("relay", "worker", "users-create-topics")),
    ("timeline-api", "redis-cluster", 6379),
    ("worker", "redis-cluster", 6379),
}


def _policies_of(docs: list[dict], labels: dict, direction: str) -> list[dict]:
    return [
        p
        for p in _of(docs, "NetworkPolicy")
        if _selects(p["spec"]["podSelector"], labels) and direction in p["spec"]["policyTypes"]
    ]


def _ports(rule: dict) -> set[int]:
    return {port["port"] for port in rule.get("ports", [])}


@pytest.mark.parametrize("variant", FULL)
def test_network_policies_allow_exactly_the_application_s_connections(
    rendered: dict[str, list[dict]], variant: str
) -> None:
    docs = rendered[variant]
    groups = _pod_groups(docs)
    edges = set()
    for source in APP:
        policies = _policies_of(docs, groups[source], "Egress")
        assert policies, f"{source}: no egress policy, so it may connect anywhere"
        for rule in (rule for p in policies for rule in p["spec"].get("egress", [])):
            if "to" not in rule:
                assert _ports(rule) == {53}, f"{source}: egress to anyone beyond DNS"
                continue
            for peer in rule["to"]:
                for target, labels in groups.items():
                    if _selects(peer["podSelector"], labels):
                        edges |= {(source, target, port) for port in _ports(rule)}
    assert edges == ALLOWED
    # And each target takes them: its ingress policies (Kafka's from the listener's peers).
    kafka = _of(docs, "Kafka")[0]
    peers = kafka["spec"]["kafka"]["listeners"][0]["networkPolicyPeers"]
    for source, target, port in ALLOWED:
        if target == "events":
            assert any(_selects(peer["podSelector"], groups[source]) for peer in peers), (source, target)
            continue
        rules = [r for p in _policies_of(docs, groups[target], "Ingress") for r in p["spec"].get("ingress", [])]
        assert any(
            port in _ports(rule)
            and any("podSelector" in peer and _selects(peer["podSelector"], groups[source]) for peer in rule["from"])
            for rule in rules
            if "from" in rule
        ), (source, target, port)
    # Nothing but the gateway takes connections from anyone.
    open_to_all = {
        name
        for name, labels in groups.items()
        if name in APP
        for p in _policies_of(docs, labels, "Ingress")
        for rule in p["spec"].get("ingress", [])
        if "from" not in rule
    }
    assert open_to_all == {"gateway"}


@pytest.mark.parametrize("variant", FULL)
def test_autoscalers_target_existing_deployments(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered[variant]
    targets = []
    for hpa in _of(docs, "HorizontalPodAutoscaler"):
        ref = hpa["spec"]["scaleTargetRef"]
        assert _named(docs, ref["kind"], ref["name"]) is not None, f"HPA {hpa['metadata']['name']} -> {ref}"
        assert hpa["spec"]["minReplicas"] <= hpa["spec"]["maxReplicas"]
        targets.append(ref["name"])
        for metric in hpa["spec"]["metrics"]:
            if metric["type"] == "Resource":
                # Utilization needs a request to be a fraction of.
                container = _pod_spec(_named(docs, ref["kind"], ref["name"]))["containers"][0]
                assert metric["resource"]["name"] in container["resources"]["requests"]
    for so in _of(docs, "ScaledObject"):
        targets.append(so["spec"]["scaleTargetRef"]["name"])
    assert len(targets) == len(set(targets)), f"{variant}: a Deployment has two autoscalers: {targets}"
    for name in targets:
        # Otherwise every apply resets the count the autoscaler chose.
        assert "replicas" not in _named(docs, "Deployment", name)["spec"], f"{variant}: {name} sets replicas"
    if variant != "local":
        assert set(targets) == {"users-api", "timeline-api", "worker"}


def test_worker_autoscaling_is_bounded_by_partitions_and_uses_lag(rendered: dict[str, list[dict]]) -> None:
    partitions = {t.name: t.partitions for t in topics.ALL}
    cap = partitions[topics.TWEETS.name]
    hpa = _named(rendered["production"], "HorizontalPodAutoscaler", "worker")
    assert hpa["spec"]["maxReplicas"] <= cap
    metrics = {m["type"]: m for m in hpa["spec"]["metrics"]}
    assert metrics["External"]["external"]["metric"]["name"] == "timeline_consumer_lag"
    assert metrics["Resource"]["resource"]["name"] == "cpu"
    so = _named(rendered["production-keda"], "ScaledObject", "worker")
    assert so["spec"]["maxReplicaCount"] <= cap
    kafka = next(t for t in so["spec"]["triggers"] if t["type"] == "kafka")
    worker = _pod_spec(_named(rendered["production-keda"], "Deployment", "worker"))["containers"][0]
    env = _env(rendered["production-keda"], worker)
    assert kafka["metadata"]["consumerGroup"] == env["TIMELINE_CONSUMER_GROUP"]
    assert kafka["metadata"]["bootstrapServers"] == env["KAFKA_BOOTSTRAP_SERVERS"]


# ---------------------------------------------------------------------------------
# Configuration against the infrastructure and the code
# ---------------------------------------------------------------------------------
def _dsns(value: str) -> list[str]:
    return [item.strip() for item in value.split(",") if item.strip()]


@pytest.mark.parametrize("variant", ["local", "base+infra"])
def test_shard_dsns_match_the_database_clusters(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered["base"] + rendered["infra"] if variant == "base+infra" else rendered[variant]
    clusters = sorted(
        _of(docs, "Cluster"), key=lambda c: int(c["metadata"]["labels"]["timeline.example.com/shard-index"])
    )
    assert [int(c["metadata"]["labels"]["timeline.example.com/shard-index"]) for c in clusters] == list(
        range(len(clusters))
    )
    secret = _secret_data(_named(docs, "Secret", "users-db"))
    shard_dsns = _dsns(secret["USERS_SHARD_DSNS"])
    replica_dsns = _dsns(secret["USERS_REPLICA_DSNS"])
    assert len(shard_dsns) == len(clusters), "one DSN per physical shard (CloudNativePG Cluster)"
    assert not replica_dsns or len(replica_dsns) == len(clusters)
    for index, cluster in enumerate(clusters):
        name = cluster["metadata"]["name"]
        initdb = cluster["spec"]["bootstrap"]["initdb"]
        credentials = _secret_data(_named(docs, "Secret", initdb["secret"]["name"]))
        for dsn, suffixes in (
            (shard_dsns[index], ("rw",)),
            *(((replica_dsns[index], ("ro", "r")),) if replica_dsns else ()),
        ):
            url = urlsplit(dsn)
            assert url.scheme == "postgresql+asyncpg", dsn
            assert url.hostname in {f"{name}-{s}" for s in suffixes}, f"shard {index}: {url.hostname}"
            assert (url.port or 5432) == 5432
            assert url.path.lstrip("/") == initdb["database"]
            assert url.username == initdb["owner"] == credentials["username"]
            assert url.password == credentials["password"], "DSN password differs from the bootstrap secret"
        if cluster["spec"]["instances"] == 1 and replica_dsns:
            assert urlsplit(replica_dsns[index]).hostname != f"{name}-ro", "-ro has no endpoints with one instance"


@pytest.mark.parametrize("variant", FULL)
def test_connection_settings_point_at_rendered_services(rendered: dict[str, list[dict]], variant: str) -> None:
    docs = rendered[variant]
    services = {s["metadata"]["name"]: s for s in _of(docs, "Service")}
    kafka = _of(docs, "Kafka")[0]
    plain = next(
        listener
        for listener in kafka["spec"]["kafka"]["listeners"]
        if not listener["tls"] and listener["type"] == "internal"
    )
    bootstrap = f"{kafka['metadata']['name']}-kafka-bootstrap:{plain['port']}"

    def service_port(host: str, port: int) -> None:
        assert host in services, f"{variant}: no Service {host}"
        assert port in {p["port"] for p in services[host]["spec"]["ports"]}, f"{host}:{port}"

    for deploy in _of(docs, "Deployment") + _of(docs, "Job") + _of(docs, "CronJob"):
        for container in _containers(deploy):
            env = _env(docs, container)
            if "KAFKA_BOOTSTRAP_SERVERS" in env:
                assert env["KAFKA_BOOTSTRAP_SERVERS"] == bootstrap
            if "TIMELINE_REDIS_URL" in env:
                url = urlsplit(env["TIMELINE_REDIS_URL"])
                service_port(url.hostname, url.port)
                assert _selects(
                    services[url.hostname]["spec"]["selector"],
                    _pod_labels(_named(docs, "StatefulSet", "redis-cluster")),
                )
            for key in ("TIMELINE_USERS_API_URL", "USERS_TIMELINE_API_URL"):
                if key in env:
                    url = urlsplit(env[key])
                    service_port(url.hostname, url.port)
            for key in ("USERS_UPSTREAM", "TIMELINE_UPSTREAM"):
                if key in env:
                    host, port = env[key].split(":")
                    service_port(host, int(port))


def _names_read_by(*files: str) -> set[str]:
    names = set()
    for file in files:
        text = (ROOT / file).read_text()
        names |= set(re.findall(r"""(?:environ\.get|environ\[|_env|_list)\(\s*["']([A-Z][A-Z0-9_]+)["']""", text))
        names |= set(re.findall(r"""environ\[["']([A-Z][A-Z0-9_]+)["']\]""", text))
    return names


USERS_READS = _names_read_by("users_service/src/users/settings.py", "users_service/src/users/relay/__main__.py")
TIMELINE_READS = _names_read_by(
    "timeline_service/src/timeline/settings.py", "timeline_service/src/timeline/worker/__main__.py"
)
# Read by uvicorn itself (--workers default) and by the Job script of base/scripts.
OTHER_READS = {"WEB_CONCURRENCY"} | _names_read_by("deploy/k8s/base/scripts/wait_for_topics.py")
# The settings the brief names: every one must reach the processes that use it.
REQUIRED_USERS = {
    "USERS_SHARD_DSNS",
    "USERS_REPLICA_DSNS",
    "KAFKA_BOOTSTRAP_SERVERS",
    "USERS_CURSOR_SECRET",
    "LOG_LEVEL",
}
REQUIRED_TIMELINE = {
    "KAFKA_BOOTSTRAP_SERVERS",
    "TIMELINE_REDIS_URL",
    "TIMELINE_USERS_API_URL",
    "TIMELINE_CELEBRITY_THRESHOLD",
    "TIMELINE_MAX_ITEMS",
    "TIMELINE_TTL",
    "TIMELINE_CURSOR_SECRET",
    "LOG_LEVEL",
}


def test_the_code_reads_what_this_test_expects() -> None:
    assert REQUIRED_USERS <= USERS_READS
    assert REQUIRED_TIMELINE <= TIMELINE_READS
    assert {"USERS_RELAY_METRICS_PORT", "USERS_RELAY_METRICS_ADDR"} <= USERS_READS
    assert {"TIMELINE_WORKER_METRICS_PORT", "TIMELINE_WORKER_METRICS_ADDR"} <= TIMELINE_READS


def test_every_setting_is_one_the_code_reads(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["local"]
    for deploy in _of(docs, "Deployment") + _of(docs, "Job") + _of(docs, "CronJob"):
        for container in _containers(deploy):
            image = container["image"]
            if image.startswith(USERS_IMAGE):
                known = USERS_READS | OTHER_READS
            elif image.startswith(TIMELINE_IMAGE):
                known = TIMELINE_READS | OTHER_READS
            else:
                continue
            unknown = set(_env(docs, container)) - known
            assert not unknown, (
                f"{deploy['metadata']['name']}[{container['name']}] sets {sorted(unknown)}: read by nothing (typo?)"
            )


def test_the_processes_get_the_settings_they_need(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["local"]
    needs = {
        "users-api": REQUIRED_USERS,
        "relay": REQUIRED_USERS - {"USERS_CURSOR_SECRET"} | {"USERS_RELAY_METRICS_PORT", "USERS_RELAY_METRICS_ADDR"},
        "timeline-api": REQUIRED_TIMELINE,
        "worker": REQUIRED_TIMELINE - {"TIMELINE_CURSOR_SECRET"}
        | {"TIMELINE_WORKER_METRICS_PORT", "TIMELINE_WORKER_METRICS_ADDR"},
    }
    for name, required in needs.items():
        env = _env(docs, _pod_spec(_named(docs, "Deployment", name))["containers"][0])
        assert required <= set(env), f"{name} lacks {sorted(required - set(env))}"
    migrate = _env(docs, _pod_spec(_named(docs, "Job", "users-migrate"))["containers"][0])
    assert "USERS_SHARD_DSNS" in migrate
    # Metrics servers listen beyond loopback, on the ports the pods expose and annotate.
    for name, prefix in (("relay", "USERS_RELAY"), ("worker", "TIMELINE_WORKER")):
        deploy = _named(docs, "Deployment", name)
        env = _env(docs, _pod_spec(deploy)["containers"][0])
        assert env[f"{prefix}_METRICS_ADDR"] == "0.0.0.0"
        assert (
            deploy["spec"]["template"]["metadata"]["annotations"]["prometheus.io/port"] == env[f"{prefix}_METRICS_PORT"]
        )


def test_processes_run_the_commands_of_the_local_stack(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["base"]
    commands = {
        d["metadata"]["name"]: _pod_spec(d)["containers"][0].get("command")
        for d in _of(docs, "Deployment") + _of(docs, "Job") + _of(docs, "CronJob")
    }
    assert commands["users-api"][:3] == ["uvicorn", "users.api.app:create_app", "--factory"]
    assert commands["timeline-api"][:3] == ["uvicorn", "timeline.api.app:create_app", "--factory"]
    assert commands["relay"] == ["python", "-m", "users.relay"]
    assert commands["worker"] == ["python", "-m", "timeline.worker"]
    assert commands["users-migrate"] == ["python", "-m", "users.migrate"]
    assert commands["users-shards"] == ["python", "-m", "users.shards"]
    assert commands["users-create-topics"] == ["python", "-m", "users.create_topics"]
    for name, port in (("users-api", "8001"), ("timeline-api", "8002")):
        cmd = commands[name]
        assert cmd[cmd.index("--port") + 1] == port and cmd[cmd.index("--host") + 1] == "0.0.0.0"


@pytest.mark.parametrize("variant", ["base", *FULL])
def test_the_shards_command_is_a_suspended_cronjob_run_by_hand(rendered: dict[str, list[dict]], variant: str) -> None:
    """`python -m users.shards` (grow the PostgreSQL fleet) is there to be run by hand
    (`kubectl create job --from=cronjob/users-shards`, docs/kubernetes.md), never by an
    apply; it runs like the migrations (image, settings, security), and a failed move is
    never retried by Kubernetes: `resume` is the retry."""
    docs = rendered[variant]
    cron = _named(docs, "CronJob", "users-shards")
    assert cron is not None, f"{variant}: no CronJob users-shards"
    assert cron["spec"]["suspend"] is True, "an apply must never start a move"
    job_spec = cron["spec"]["jobTemplate"]["spec"]
    assert job_spec["backoffLimit"] == 0
    assert "activeDeadlineSeconds" not in job_spec, "a deadline would kill a move half-way"
    pod = _pod_spec(cron)
    assert pod["restartPolicy"] == "Never"
    (container,) = pod["containers"]
    assert container["command"] == ["python", "-m", "users.shards"]
    assert container["args"] == ["status"], "the default run only reads"
    migrate = _named(docs, "Job", "users-migrate")
    (migrate_container,) = _pod_spec(migrate)["containers"]
    assert container["image"].rpartition(":")[0] == USERS_IMAGE
    assert container["image"] == migrate_container["image"]
    assert container["envFrom"] == migrate_container["envFrom"]
    assert container["securityContext"] == migrate_container["securityContext"]
    assert pod["securityContext"] == _pod_spec(migrate)["securityContext"]
    assert pod["automountServiceAccountToken"] is False
    # Its pods are the command's: the network policies know them by this label.
    assert _pod_labels(cron)["app.kubernetes.io/name"] == "users-shards"
    assert cron["spec"]["jobTemplate"]["metadata"]["labels"] == _pod_labels(cron)
    # Nothing that runs on apply runs it.
    for job in _of(docs, "Job"):
        assert not any("users.shards" in " ".join(c.get("command", [])) for c in _containers(job))
    assert "--from=cronjob/users-shards" in (ROOT / "docs" / "kubernetes.md").read_text()


@pytest.mark.parametrize("variant", FULL)
def test_images_are_the_project_images_at_one_tag(rendered: dict[str, list[dict]], variant: str) -> None:
    tags = set()
    for doc in _workloads(rendered[variant]):
        for container in _containers(doc):
            image = container["image"]
            repo, _, tag = image.rpartition(":")
            assert tag and "/" not in tag, f"{image}: pin a tag"
            if repo in (USERS_IMAGE, TIMELINE_IMAGE):
                tags.add(tag)
                cmd = " ".join(container.get("command", []))
                module = "users" if repo == USERS_IMAGE else "timeline"
                assert module in cmd or "/scripts/" in cmd, f"{image} runs {cmd}"
            else:
                assert repo in ("nginx", "redis"), f"unexpected image {image}"
    assert tags == {"0.1.0"}


def test_kafka_topics_are_those_of_shared_schemas(rendered: dict[str, list[dict]]) -> None:
    for variant in ("infra", *FULL):
        declared = {
            t["spec"].get("topicName", t["metadata"]["name"]): t["spec"]["partitions"]
            for t in _of(rendered[variant], "KafkaTopic")
        }
        assert declared == {t.name: t.partitions for t in topics.ALL}, variant
    prod = rendered["production"]
    assert all(t["spec"]["replicas"] == 3 for t in _of(prod, "KafkaTopic"))
    assert _of(prod, "Kafka")[0]["spec"]["kafka"]["config"]["auto.create.topics.enable"] is False


def test_the_topics_job_waits_for_the_topic_operator(rendered: dict[str, list[dict]]) -> None:
    script = K8S / "base" / "scripts" / "wait_for_topics.py"
    compile(script.read_text(), str(script), "exec")  # at least valid Python
    docs = rendered["base"]
    job = _named(docs, "Job", "users-create-topics")
    init = _pod_spec(job)["initContainers"][0]
    assert init["command"] == ["python", "/scripts/wait_for_topics.py"]
    volume = next(v for v in _pod_spec(job)["volumes"] if v["name"] == "scripts")
    cm = _named(docs, "ConfigMap", volume["configMap"]["name"])
    assert cm["data"]["wait_for_topics.py"] == script.read_text()


def test_redis_cluster_job_matches_the_statefulset(rendered: dict[str, list[dict]]) -> None:
    for variant in FULL:
        docs = rendered[variant]
        sts = _named(docs, "StatefulSet", "redis-cluster")
        job_env = _env(docs, _pod_spec(_named(docs, "Job", "redis-cluster-create"))["containers"][0])
        nodes, per_master = int(job_env["REDIS_NODES"]), int(job_env["REDIS_REPLICAS_PER_MASTER"])
        assert nodes == sts["spec"]["replicas"], variant
        assert nodes % (per_master + 1) == 0 and nodes // (per_master + 1) >= 3, "Redis Cluster needs >= 3 masters"
        assert job_env["REDIS_STATEFULSET"] == sts["metadata"]["name"]
        assert job_env["REDIS_SERVICE"] == sts["spec"]["serviceName"]
        headless = _named(docs, "Service", sts["spec"]["serviceName"])
        assert headless["spec"]["clusterIP"] == "None" and headless["spec"]["publishNotReadyAddresses"] is True
        node_env = _env(docs, _pod_spec(sts)["containers"][0])
        assert node_env["REDIS_SERVICE"] == sts["spec"]["serviceName"]
        # maxmemory below the container's memory limit.
        limit = _pod_spec(sts)["containers"][0]["resources"]["limits"]["memory"]
        assert _bytes(node_env["REDIS_MAXMEMORY"]) < _bytes(limit), variant
    assert _named(rendered["production"], "StatefulSet", "redis-cluster")["spec"]["replicas"] == 6


def _bytes(quantity: str) -> int:
    units = {"Ki": 2**10, "Mi": 2**20, "Gi": 2**30, "kb": 2**10, "mb": 2**20, "gb": 2**30}
    match = re.fullmatch(r"(\d+)([A-Za-z]*)", quantity)
    return int(match.group(1)) * units.get(match.group(2), 1)


def test_database_connection_budget(rendered: dict[str, list[dict]]) -> None:
    """Each relay opens up to 2 x USERS_DB_POOL_SIZE connections per shard primary (pool +
    overflow), each users-api pod 3 x (and a plain asyncpg pool for the POST and the
    rebuild's reads, docs/decisions/0018); max_connections must cover the most pods
    allowed."""
    for variant in FULL:
        docs = rendered[variant]

        def most(name: str, docs: list[dict] = docs) -> int:
            hpa = _named(docs, "HorizontalPodAutoscaler", name)
            return hpa["spec"]["maxReplicas"] if hpa else _named(docs, "Deployment", name)["spec"]["replicas"]

        pool = int(
            _env(docs, _pod_spec(_named(docs, "Deployment", "users-api"))["containers"][0])["USERS_DB_POOL_SIZE"]
        )
        # +1 migrate, listeners, slack (the shards command's few single connections)
        needed = most("users-api") * 3 * pool + (most("relay") + 1) * 2 * pool + most("relay") + 10
        for cluster in _of(docs, "Cluster"):
            allowed = int(cluster["spec"]["postgresql"]["parameters"]["max_connections"])
            assert allowed >= needed, f"{variant}: {cluster['metadata']['name']} max_connections {allowed} < {needed}"


# ---------------------------------------------------------------------------------
# Gateway
# ---------------------------------------------------------------------------------
def test_gateway_template_copy_is_identical_to_the_original() -> None:
    original = ROOT / "deploy" / "nginx" / "gateway.conf.template"
    copy_ = K8S / "base" / "gateway" / "gateway.conf.template"
    assert copy_.read_text() == original.read_text(), (
        "deploy/k8s/base/gateway/gateway.conf.template is stale: deploy/k8s/tools.sh sync-gateway"
    )


def test_gateway_main_config_copy_is_identical_and_holds_thousands_of_connections(
    rendered: dict[str, list[dict]],
) -> None:
    original = (ROOT / "deploy" / "nginx" / "nginx.conf").read_text()
    assert (K8S / "base" / "gateway" / "nginx.conf").read_text() == original, (
        "deploy/k8s/base/gateway/nginx.conf is stale: deploy/k8s/tools.sh sync-gateway"
    )
    assert int(re.search(r"worker_connections\s+(\d+);", original).group(1)) >= 8192  # type: ignore[union-attr]
    docs = rendered["base"]
    deploy = _named(docs, "Deployment", "gateway")
    container = _pod_spec(deploy)["containers"][0]
    (main,) = [m for m in container["volumeMounts"] if m["mountPath"] == "/etc/nginx/nginx.conf"]
    volumes = {v["name"]: v for v in _pod_spec(deploy)["volumes"]}
    config = _named(docs, "ConfigMap", volumes[main["name"]]["configMap"]["name"])
    assert config["data"][main["subPath"]] == original


def test_gateway_renders_the_template_with_every_placeholder(rendered: dict[str, list[dict]]) -> None:
    docs = rendered["base"]
    deploy = _named(docs, "Deployment", "gateway")
    container = _pod_spec(deploy)["containers"][0]
    assert container["image"] == "nginx:1.27"
    mounts = {m["mountPath"]: m["name"] for m in container["volumeMounts"]}
    volumes = {v["name"]: v for v in _pod_spec(deploy)["volumes"]}
    template_cm = _named(docs, "ConfigMap", volumes[mounts["/etc/nginx/templates"]]["configMap"]["name"])
    (template,) = template_cm["data"].values()
    assert list(template_cm["data"]) == ["gateway.conf.template"]
    placeholders = set(re.findall(r"\$\{([A-Z_]+)\}", template))
    env = _env(docs, container)
    assert placeholders <= set(env), f"unset placeholders {placeholders - set(env)}"
    assert set(env["NGINX_ENVSUBST_FILTER"].strip("()").split("|")) == placeholders
    # Non-root nginx: writable paths are volumes, the listen port is unprivileged and exposed.
    for path in ("/etc/nginx/conf.d", "/var/cache/nginx", "/run"):
        assert "emptyDir" in volumes[mounts[path]], path
    assert int(env["GATEWAY_PORT"]) > 1024
    assert int(env["GATEWAY_PORT"]) in {p["containerPort"] for p in container["ports"]}


# ---------------------------------------------------------------------------------
# Secrets
# ---------------------------------------------------------------------------------
def test_placeholder_secrets_are_marked_and_absent_from_production(rendered: dict[str, list[dict]]) -> None:
    for variant in ("local", "base", "infra"):
        for secret in _of(rendered[variant], "Secret"):
            assert PLACEHOLDER_ANNOTATION in secret["metadata"].get("annotations", {}), secret["metadata"]["name"]
            assert all("CHANGE-ME" in v for k, v in _secret_data(secret).items() if v and k != "username"), secret[
                "metadata"
            ]["name"]
    for variant in ("production", "production-keda"):
        docs = rendered[variant]
        assert not _of(docs, "Secret"), "production must not ship placeholder secrets"
        referenced = set()
        for doc in _workloads(docs):
            for container in _containers(doc):
                referenced |= {s["secretRef"]["name"] for s in container.get("envFrom", []) if "secretRef" in s}
        referenced |= {c["spec"]["bootstrap"]["initdb"]["secret"]["name"] for c in _of(docs, "Cluster")}
        assert referenced == EXTERNAL_SECRETS
    doc = (ROOT / "docs" / "kubernetes.md").read_text()
    for name in EXTERNAL_SECRETS:
        assert name in doc, f"docs/kubernetes.md must say how to create Secret {name}"


# ---------------------------------------------------------------------------------
# Observability
# ---------------------------------------------------------------------------------
def _exported_series() -> set[str]:
    """Every series name the services export: their own prometheus_client metrics plus
    the litestar Prometheus plugin's (prefix from its config class)."""
    from litestar.plugins.prometheus import PrometheusConfig
    from litestar.plugins.prometheus import middleware as litestar_middleware

    series = set()
    pattern = re.compile(r"""\b(Counter|Gauge|Histogram)\(\s*["']([a-z_:][a-z0-9_:]*)["']""")
    for source in list((ROOT / "users_service" / "src").rglob("*.py")) + list(
        (ROOT / "timeline_service" / "src").rglob("*.py")
    ):
        for kind, name in pattern.findall(source.read_text()):
            series |= _series_of(kind, name)
    prefix = PrometheusConfig().prefix
    plugin_source = Path(litestar_middleware.__file__).read_text()
    for suffix, kind in re.findall(
        r"""\{self\._config\.prefix\}(_[a-z_]+)["'][\s\S]{0,200}?(Counter|Gauge|Histogram)\(""", plugin_source
    ):
        series |= _series_of(kind, prefix + suffix)
    return series


def _series_of(kind: str, name: str) -> set[str]:
    if kind == "Counter":
        return {name.removesuffix("_total") + "_total"}
    if kind == "Histogram":
        return {name + s for s in ("_bucket", "_sum", "_count")}
    return {name}


def _dashboard_exprs() -> list[str]:
    dashboard = json.loads((OBS / "grafana-dashboard.json").read_text())
    exprs = [t["expr"] for p in dashboard["panels"] for t in p.get("targets", [])]
    exprs += [v["query"]["query"] for v in dashboard["templating"]["list"] if isinstance(v.get("query"), dict)]
    return exprs


def test_dashboard_queries_only_metrics_the_code_exports() -> None:
    exported = _exported_series()
    assert {"litestar_request_duration_seconds_bucket", "litestar_requests_total"} <= exported
    used = set()
    for expr in _dashboard_exprs():
        used |= {
            m for m in re.findall(r"\b[a-z_][a-z0-9_]*\b", expr) if m.startswith(("litestar_", "timeline_", "outbox_"))
        }
    assert used - exported == set(), f"the dashboard queries metrics nobody exports: {sorted(used - exported)}"
    wanted = {
        "litestar_request_duration_seconds_bucket",
        "timeline_fanout_deliveries_total",
        "timeline_fanout_batch_size_bucket",
        "timeline_consumer_lag",
        "outbox_backlog",
        "outbox_relay_batch_seconds_bucket",
        "timeline_dead_letters_total",
        "timeline_tweet_cache_lookups_total",
        "timeline_rebuilds_total",
        "timeline_read_repair_seconds_bucket",
    }
    assert wanted <= used, f"panels missing for {sorted(wanted - used)}"
    joined = "\n".join(_dashboard_exprs())
    assert 'result="hit"' in joined and "hit|miss" in joined
    assert "by (le, app_name, path)" in joined and "status_code" in joined


def test_dashboard_is_well_formed(rendered: dict[str, list[dict]]) -> None:
    dashboard = json.loads((OBS / "grafana-dashboard.json").read_text())
    assert dashboard["uid"] and dashboard["title"]
    ids = [p["id"] for p in dashboard["panels"]]
    assert len(ids) == len(set(ids))
    for panel in dashboard["panels"]:
        grid = panel["gridPos"]
        assert grid["x"] + grid["w"] <= 24
    # Shipped to Grafana as a ConfigMap for the sidecar.
    cm = _named(rendered["base"], "ConfigMap", "grafana-dashboard-timeline")
    assert cm["metadata"]["labels"]["grafana_dashboard"] == "1"
    assert json.loads(cm["data"]["timeline.json"]) == dashboard


def test_prometheus_config_scrapes_pods_and_the_local_stack(rendered: dict[str, list[dict]]) -> None:
    config = yaml.safe_load((OBS / "prometheus.yml").read_text())
    jobs = {job["job_name"]: job for job in config["scrape_configs"]}
    pods = jobs["kubernetes-pods"]
    assert pods["kubernetes_sd_configs"][0]["role"] == "pod"
    sources = {tuple(r.get("source_labels", [])) for r in pods["relabel_configs"]}
    for annotation in ("scrape", "path", "port"):
        assert any(f"__meta_kubernetes_pod_annotation_prometheus_io_{annotation}" in s for src in sources for s in src)
    static = {name: job["static_configs"][0]["targets"] for name, job in jobs.items() if "static_configs" in job}
    assert static == {
        "users-api": ["127.0.0.1:8001"],
        "timeline-api": ["127.0.0.1:8002"],
        "relay": ["127.0.0.1:9101"],
        "worker": ["127.0.0.1:9111"],
    }
    stack = (ROOT / "deploy" / "local" / "stack.sh").read_text()
    assert "TIMELINE_WORKER_METRICS_BASE_PORT:=9111" in stack and "USERS_RELAY_METRICS_BASE_PORT:=9101" in stack
    # Every annotated pod's port is one the pod exposes.
    for doc in _of(rendered["base"], "Deployment"):
        annotations = doc["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/scrape") == "true":
            ports = {p["containerPort"] for c in _pod_spec(doc)["containers"] for p in c.get("ports", [])}
            assert int(annotations["prometheus.io/port"]) in ports, doc["metadata"]["name"]


def _alert_rules() -> list[dict]:
    config = yaml.safe_load((OBS / "alerts.yml").read_text())
    return [rule for group in config["groups"] for rule in group["rules"]]


def test_the_alerting_rules_pass_their_cases() -> None:
    # promtool (Prometheus's own checker) parses each expression and runs
    # alerts.test.yml: each alert raised when what it watches goes wrong, not otherwise.
    promtool = shutil.which("promtool")
    assert promtool, "promtool is missing: deploy/local/install.sh installs it (Debian's prometheus)"
    for command in (["check", "rules", "alerts.yml"], ["test", "rules", "alerts.test.yml"]):
        done = subprocess.run([promtool, *command], cwd=OBS, capture_output=True, text=True, timeout=120)
        assert done.returncode == 0, done.stdout + done.stderr


def test_every_alert_watches_exported_metrics_has_a_case_and_says_what_to_do(rendered: dict[str, list[dict]]) -> None:
    exported, rules = _exported_series(), _alert_rules()
    cases = yaml.safe_load((OBS / "alerts.test.yml").read_text())["tests"]
    raised = {check["alertname"] for case in cases for check in case["alert_rule_test"] if check.get("exp_alerts")}
    for rule in rules:
        used = set(re.findall(r"\b[a-z_][a-z0-9_]*\b", re.sub(r'"[^"]*"', "", rule["expr"])))
        metrics = {m for m in used if m.startswith(("litestar_", "timeline_", "outbox_", "users_"))}
        assert metrics <= exported, f"{rule['alert']} watches metrics nobody exports: {sorted(metrics - exported)}"
        assert metrics or "up" in used, rule["alert"]
        assert rule["alert"] in raised, f"{rule['alert']} has no case in alerts.test.yml that raises it"
        assert rule["labels"]["severity"] in ("warning", "critical")
        assert rule["annotations"]["summary"] and rule["annotations"]["description"]
    # `up` is per job: the jobs the rules name are the scrape jobs, local and in pods.
    jobs = {job["job_name"] for job in yaml.safe_load((OBS / "prometheus.yml").read_text())["scrape_configs"]}
    (down,) = [rule for rule in rules if rule["alert"] == "ProcessDown"]
    assert set(re.search(r'job=~"([^"]+)"', down["expr"])[1].split("|")) <= jobs
    assert "alerts.yml" in yaml.safe_load((OBS / "prometheus.yml").read_text())["rule_files"]
    # Shipped to Kubernetes as a ConfigMap, the file as it is.
    cm = _named(rendered["base"], "ConfigMap", "prometheus-rules-timeline")
    assert cm["data"]["alerts.yml"] == (OBS / "alerts.yml").read_text()


def test_prometheus_adapter_rule_serves_the_hpa_metric() -> None:
    values = yaml.safe_load((OBS / "prometheus-adapter-values.yaml").read_text())
    (rule,) = values["rules"]["external"]
    assert rule["name"]["as"] == "timeline_consumer_lag"
    assert "timeline_consumer_lag" in rule["seriesQuery"]
