"""Deployment files agree with the code: compose, Prometheus, Grafana, Dockerfile, Kubernetes.

Pure: the files are parsed, Kubernetes objects are validated against the JSON schemas that
``kubernetes-validate`` bundles (no cluster, no network), and the environment each deployment
gives the worker and the API is loaded into :class:`Settings`, so a misspelt variable, a port
that drifted or a value that production refuses fails here instead of at start-up.
"""

from __future__ import annotations

import copy
import os
import re
import urllib.request
import xml.etree.ElementTree as ET
from collections.abc import Mapping
from pathlib import Path
from typing import Any
from urllib.parse import urlsplit

import kubernetes_validate
import pytest
import yaml
from pydantic import ValidationError

from bestand.cli import build_parser
from bestand.settings import Settings
from bestand.stack.redis import MEMORY_OPTIONS

ROOT = Path(__file__).resolve().parents[2]
DEPLOY = ROOT / "deploy"
COMPOSE_DIR = DEPLOY / "compose"
K8S_DIR = DEPLOY / "k8s"
DOCKERFILE = DEPLOY / "docker" / "Dockerfile"

PREFIX = str(Settings.model_config["env_prefix"])
SETTING_VARIABLES = {f"{PREFIX}{name}".upper() for name in Settings.model_fields}
REQUIRED = ("BESTAND_HMAC_SECRET", "BESTAND_API_KEYS")
#: Required of the collector alone.
COLLECTOR_REQUIRED = ("BESTAND_COLLECTOR_WRITE_KEYS",)
#: What an operator fills in for the required secrets.
OPERATOR_SECRETS = {
    "BESTAND_HMAC_SECRET": "3f9c1e0b7a5d42e8b6c0f1a2d3e4f5a6",
    "BESTAND_API_KEYS": "adserver-7f3a9c1e0b5d:ads,affiliates-2b8e4d6f1a3c:affiliate",
    "BESTAND_COLLECTOR_WRITE_KEYS": "shop-web-5c2e9a7b1d3f,shop-app-8d4b2f6a0c1e",
}
BESTAND_SERVICES = ("worker", "api", "collector")
#: The oldest Kubernetes release the manifests are meant for.
KUBERNETES_VERSION = "1.30"


def load_yaml(path: Path) -> Any:
    return yaml.safe_load(path.read_text(encoding="utf-8"))


def settings_from(env: Mapping[str, object], monkeypatch: pytest.MonkeyPatch) -> Settings:
    """Settings as a process with exactly this ``BESTAND_*`` environment would load them."""
    for name in list(os.environ):
        if name.startswith(PREFIX):
            monkeypatch.delenv(name)
    for name, value in env.items():
        monkeypatch.setenv(name, str(value))
    return Settings(_env_file=None)


# --- compose ---------------------------------------------------------------------------------

#: ``$$``, ``$NAME``, ``${NAME}``, ``${NAME:-default}``, ``${NAME:?message}`` as compose reads them.
_VARIABLE = re.compile(
    r"\$(?:(?P<escaped>\$)|(?P<bare>\w+)|\{(?P<name>\w+)(?:(?P<op>:[-?])(?P<arg>[^}]*))?\})"
)


def interpolate(value: str, given: Mapping[str, str]) -> str:
    """``value`` with its variables replaced from ``given``; KeyError for a missing required."""

    def replace(match: re.Match[str]) -> str:
        if match["escaped"]:
            return "$"
        name = match["bare"] or match["name"]
        found = given.get(name, "")
        if match["op"] == ":?" and not found:
            raise KeyError(f"{name}: {match['arg']}")
        if match["op"] == ":-" and not found:
            return match["arg"]
        return found

    return _VARIABLE.sub(replace, value)


@pytest.fixture(scope="module")
def compose() -> dict[str, Any]:
    document = load_yaml(COMPOSE_DIR / "compose.yaml")
    assert isinstance(document, dict)
    return document


@pytest.fixture(scope="module")
def services(compose: dict[str, Any]) -> dict[str, Any]:
    found = compose["services"]
    assert isinstance(found, dict)
    return found


def raw_environment(service: Mapping[str, Any]) -> dict[str, str]:
    environment = service.get("environment", {})
    assert isinstance(environment, dict), "environment as a mapping, so it can be checked"
    return {str(name): str(value) for name, value in environment.items()}


def environment_of(service: Mapping[str, Any], given: Mapping[str, str]) -> dict[str, str]:
    return {name: interpolate(value, given) for name, value in raw_environment(service).items()}


def compose_settings(
    services: Mapping[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> Settings:
    """The worker's or API's settings with the secrets filled in and nothing else set."""
    return settings_from(environment_of(services[name], OPERATOR_SECRETS), monkeypatch)


def container_port(published: str) -> int:
    """The container side of a short-syntax port such as ``127.0.0.1:8080:8080``."""
    return int(str(published).rsplit(":", 1)[-1].split("/")[0])


def bind_mounts(service: Mapping[str, Any]) -> dict[str, Path]:
    """Container path → host path of a service's bind mounts (named volumes left out)."""
    mounts = {}
    for volume in service.get("volumes", []):
        source, target = str(volume).split(":")[:2]
        if source.startswith((".", "/")):
            mounts[target] = (COMPOSE_DIR / source).resolve()
    return mounts


def test_every_service_has_a_healthcheck(services: dict[str, Any]) -> None:
    assert {"kafka", "redis", "worker", "api", "collector", "prometheus", "grafana"} <= set(
        services
    )
    for name, service in services.items():
        check = service.get("healthcheck", {})
        assert check.get("test"), f"{name} has no healthcheck"
        assert not check.get("disable"), f"{name} disables its healthcheck"
        assert check["test"][0] in {"CMD", "CMD-SHELL"}, f"{name}: {check['test']}"


@pytest.mark.parametrize("name", BESTAND_SERVICES)
def test_bestand_variables_are_settings(services: dict[str, Any], name: str) -> None:
    variables = {v for v in raw_environment(services[name]) if v.startswith(PREFIX)}
    assert variables, f"{name} sets no {PREFIX}* variable"
    assert sorted(variables - SETTING_VARIABLES) == []


@pytest.mark.parametrize("name", BESTAND_SERVICES)
def test_secrets_are_required_variables(services: dict[str, Any], name: str) -> None:
    environment = raw_environment(services[name])
    for variable in REQUIRED + (COLLECTOR_REQUIRED if name == "collector" else ()):
        assert re.fullmatch(rf"\$\{{{variable}:\?.+\}}", environment[variable]), variable
        with pytest.raises(KeyError, match=variable):
            environment_of(
                services[name], {k: v for k, v in OPERATOR_SECRETS.items() if k != variable}
            )


def test_env_example_lists_the_required_variables() -> None:
    text = (COMPOSE_DIR / "compose.yaml").read_text(encoding="utf-8")
    required = set(re.findall(r"\$\{(\w+):\?", text))
    assert set(REQUIRED + COLLECTOR_REQUIRED) <= required
    example = (COMPOSE_DIR / ".env.example").read_text(encoding="utf-8")
    # Empty in the example: compose then refuses to start until someone fills them in.
    listed = set(re.findall(r"^(\w+)=$", example, flags=re.MULTILINE))
    assert required <= listed


@pytest.mark.parametrize("name", BESTAND_SERVICES)
def test_compose_environment_is_a_valid_production_configuration(
    services: dict[str, Any], name: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = compose_settings(services, name, monkeypatch)
    assert settings.env == "production"
    assert settings.hmac_secret.get_secret_value() == OPERATOR_SECRETS["BESTAND_HMAC_SECRET"]
    assert len(settings.api_keys) == 2
    hosts = {urlsplit(f"//{server}").hostname for server in settings.kafka_bootstrap.split(",")}
    assert hosts <= set(services), f"Kafka bootstrap {settings.kafka_bootstrap}"
    assert urlsplit(settings.redis_url).hostname in services


def test_kafka_advertises_the_bootstrap_address(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    bootstrap = compose_settings(services, "worker", monkeypatch).kafka_bootstrap
    advertised = raw_environment(services["kafka"])["KAFKA_ADVERTISED_LISTENERS"]
    for server in bootstrap.split(","):
        assert f"://{server.strip()}" in advertised


def test_kafka_image_is_the_pinned_version(services: dict[str, Any]) -> None:
    pom = ET.parse(DEPLOY / "local" / "kafka" / "pom.xml")  # noqa: S314 - our own file
    namespace = {"m": "http://maven.apache.org/POM/4.0.0"}
    version = pom.findtext("m:properties/m:kafka.version", namespaces=namespace)
    assert version
    assert version.startswith("4.1.")
    assert services["kafka"]["image"] == f"apache/kafka:{version}"
    assert raw_environment(services["kafka"])["KAFKA_PROCESS_ROLES"] == "broker,controller"


def test_redis_keeps_an_append_only_file(services: dict[str, Any]) -> None:
    command = [str(part) for part in services["redis"]["command"]]
    pairs = dict(zip(command[1::2], command[2::2], strict=False))
    assert command[0] == "redis-server"
    assert pairs["--appendonly"] == "yes"
    assert pairs["--appendfsync"] == "everysec"


def test_worker_and_api_run_their_commands(services: dict[str, Any]) -> None:
    assert services["worker"]["command"] == ["bestand", "worker"]
    assert services["api"]["command"] == ["bestand", "api"]
    assert services["collector"]["command"] == ["bestand", "collector"]
    assert services["worker"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    assert services["collector"]["depends_on"]["kafka"]["condition"] == "service_healthy"
    for name in BESTAND_SERVICES:
        assert services[name]["depends_on"]["redis"]["condition"] == "service_healthy"


def test_worker_healthcheck_is_the_heartbeat_probe(services: dict[str, Any]) -> None:
    command = services["worker"]["healthcheck"]["test"]
    assert command == ["CMD", "bestand", "health", "worker", "--this-host"]
    # The probe is a real subcommand with these options.
    args = build_parser().parse_args(command[2:])
    assert (args.target, args.this_host) == ("worker", True)


@pytest.mark.parametrize(
    ("name", "port_setting"), [("api", "api_port"), ("collector", "collector_port")]
)
def test_healthcheck_asks_the_configured_port(
    services: dict[str, Any], name: str, port_setting: str, monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = compose_settings(services, name, monkeypatch)
    command = services[name]["healthcheck"]["test"]
    assert command[:3] == ["CMD", "python", "-c"]
    asked: list[str] = []

    def urlopen(url: str, timeout: float) -> None:
        asked.append(url)

    # Run the one-liner in the service's environment, with the request recorded, not sent.
    monkeypatch.setattr(urllib.request, "urlopen", urlopen)
    exec(compile(command[3], f"{name} healthcheck", "exec"), {})  # noqa: S102 - our own file
    assert asked == [f"http://127.0.0.1:{getattr(settings, port_setting)}/health"]


def test_api_is_published_on_its_port(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = compose_settings(services, "api", monkeypatch)
    assert settings.api_host == "0.0.0.0"  # noqa: S104 - other containers must reach it
    assert [container_port(p) for p in services["api"]["ports"]] == [settings.api_port]


def test_collector_is_published_on_its_port(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = compose_settings(services, "collector", monkeypatch)
    assert settings.collector_host == "0.0.0.0"  # noqa: S104 - shops' servers must reach it
    assert settings.write_keys == OPERATOR_SECRETS["BESTAND_COLLECTOR_WRITE_KEYS"].split(",")
    ports = [container_port(p) for p in services["collector"]["ports"]]
    assert ports == [settings.collector_port]


def test_prometheus_scrapes_worker_and_api(
    services: dict[str, Any], monkeypatch: pytest.MonkeyPatch
) -> None:
    mounts = bind_mounts(services["prometheus"])
    config_file = mounts["/etc/prometheus/prometheus.yml"]
    assert config_file == DEPLOY / "prometheus" / "prometheus.yml"
    jobs = {job["job_name"]: job for job in load_yaml(config_file)["scrape_configs"]}
    assert set(jobs) == {"bestand-worker", "bestand-api", "bestand-collector"}
    worker = compose_settings(services, "worker", monkeypatch)
    api = compose_settings(services, "api", monkeypatch)
    collector = compose_settings(services, "collector", monkeypatch)
    expected = {
        "bestand-worker": f"worker:{worker.worker_web_port}",
        "bestand-api": f"api:{api.api_port}",
        "bestand-collector": f"collector:{collector.collector_port}",
    }
    for name, job in jobs.items():
        assert job.get("metrics_path", "/metrics") == "/metrics"
        targets = [t for group in job["static_configs"] for t in group["targets"]]
        assert targets == [expected[name]]


def test_grafana_provisions_prometheus_and_the_dashboards(services: dict[str, Any]) -> None:
    grafana = DEPLOY / "grafana"
    mounts = bind_mounts(services["grafana"])
    assert mounts["/etc/grafana/provisioning"] == grafana / "provisioning"
    providers = load_yaml(grafana / "provisioning" / "dashboards" / "bestand.yaml")["providers"]
    assert [p["type"] for p in providers] == ["file"]
    assert mounts[providers[0]["options"]["path"]] == grafana / "dashboards"
    sources = load_yaml(grafana / "provisioning" / "datasources" / "prometheus.yaml")
    [source] = sources["datasources"]
    assert source["type"] == "prometheus"
    url = urlsplit(source["url"])
    assert url.hostname == "prometheus"
    assert url.port in {container_port(p) for p in services["prometheus"]["ports"]}


def test_image_is_built_with_the_locked_versions(services: dict[str, Any]) -> None:
    build = services["worker"]["build"]
    context = (COMPOSE_DIR / build["context"]).resolve()
    assert context == ROOT
    assert (context / build["dockerfile"]).resolve() == DOCKERFILE
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    assert re.search(r"COPY [^\n]*\bconstraints\.txt\b", dockerfile)
    assert re.search(r"pip install [^\n]*(\\\n[^\n]*)*-c constraints\.txt \.", dockerfile)
    assert re.search(r"^USER \d+", dockerfile, flags=re.MULTILINE), "a numeric non-root user"


# --- Kubernetes ------------------------------------------------------------------------------


@pytest.fixture(scope="module")
def kustomization() -> dict[str, Any]:
    document = load_yaml(K8S_DIR / "kustomization.yaml")
    assert isinstance(document, dict)
    return document


def manifest_files() -> list[Path]:
    return sorted(p for p in K8S_DIR.glob("*.yaml") if p.name != "kustomization.yaml")


@pytest.fixture(scope="module")
def objects() -> list[dict[str, Any]]:
    found = []
    for path in manifest_files():
        found.extend(doc for doc in yaml.safe_load_all(path.read_text(encoding="utf-8")) if doc)
    return found


def of_kind(objects: list[dict[str, Any]], kind: str) -> dict[str, dict[str, Any]]:
    return {o["metadata"]["name"]: o for o in objects if o["kind"] == kind}


def deployment(objects: list[dict[str, Any]], component: str) -> dict[str, Any]:
    [found] = [
        d
        for d in of_kind(objects, "Deployment").values()
        if d["spec"]["template"]["metadata"]["labels"].get("app.kubernetes.io/component")
        == component
    ]
    return found


def only_container(deployment: Mapping[str, Any]) -> dict[str, Any]:
    [container] = deployment["spec"]["template"]["spec"]["containers"]
    return dict(container)


def resolve_port(container: Mapping[str, Any], port: int | str) -> int:
    if isinstance(port, int):
        return port
    named = {p["name"]: p["containerPort"] for p in container.get("ports", []) if "name" in p}
    assert port in named, f"{container['name']} has no port named {port}"
    return int(named[port])


def selects(selector: Mapping[str, str], deployment: Mapping[str, Any]) -> bool:
    labels = deployment["spec"]["template"]["metadata"]["labels"]
    return all(labels.get(key) == value for key, value in selector.items())


def k8s_settings(
    objects: list[dict[str, Any]], secrets: Mapping[str, str], monkeypatch: pytest.MonkeyPatch
) -> Settings:
    [config] = of_kind(objects, "ConfigMap").values()
    return settings_from({**config["data"], **secrets}, monkeypatch)


@pytest.mark.parametrize("path", manifest_files(), ids=lambda p: p.name)
def test_manifest_validates_against_the_kubernetes_schema(path: Path) -> None:
    documents = [d for d in yaml.safe_load_all(path.read_text(encoding="utf-8")) if d]
    assert documents
    for document in documents:
        # strict: unknown fields (a misspelt key Kubernetes would silently drop) fail too.
        kubernetes_validate.validate(document, KUBERNETES_VERSION, strict=True)


def test_schema_validation_refuses_a_broken_deployment(objects: list[dict[str, Any]]) -> None:
    broken = copy.deepcopy(deployment(objects, "worker"))
    broken["spec"]["template"]["spec"]["containers"][0]["livenesProbe"] = {}
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)
    broken = copy.deepcopy(deployment(objects, "worker"))
    broken["spec"]["replicas"] = "two"
    with pytest.raises(kubernetes_validate.ValidationError):
        kubernetes_validate.validate(broken, KUBERNETES_VERSION, strict=True)


def test_kustomization_lists_every_manifest(
    kustomization: dict[str, Any], objects: list[dict[str, Any]]
) -> None:
    assert sorted(kustomization["resources"]) == [p.name for p in manifest_files()]
    [image] = kustomization["images"]
    for name in ("worker", "api", "collector"):
        assert only_container(deployment(objects, name))["image"] == image["name"]
    namespaces = {o["metadata"].get("namespace") for o in objects if o["kind"] != "Namespace"}
    assert namespaces == {kustomization["namespace"]}


def test_configmap_and_secret_keys_are_settings(objects: list[dict[str, Any]]) -> None:
    [config] = of_kind(objects, "ConfigMap").values()
    [secret] = of_kind(objects, "Secret").values()
    assert sorted(set(config["data"]) - SETTING_VARIABLES) == []
    assert sorted(secret["stringData"]) == sorted(REQUIRED + COLLECTOR_REQUIRED)
    # Secrets belong in the Secret only.
    assert set(config["data"]).isdisjoint(REQUIRED + COLLECTOR_REQUIRED)
    assert all(isinstance(value, str) for value in config["data"].values())


def test_secret_placeholders_are_refused_and_real_values_accepted(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    [secret] = of_kind(objects, "Secret").values()
    placeholders = secret["stringData"]
    # A Secret applied as committed must stop the pods, not run with a key that is in git.
    for variable, refusal in [
        ("BESTAND_HMAC_SECRET", "HMAC_SECRET"),
        ("BESTAND_API_KEYS", "(?i)api_keys"),
        ("BESTAND_COLLECTOR_WRITE_KEYS", "COLLECTOR_WRITE_KEYS"),
    ]:
        with pytest.raises(ValidationError, match=refusal):
            k8s_settings(
                objects, {**OPERATOR_SECRETS, variable: placeholders[variable]}, monkeypatch
            )
    settings = k8s_settings(objects, OPERATOR_SECRETS, monkeypatch)
    assert settings.env == "production"


def test_deployments_read_the_configmap_and_the_secret(objects: list[dict[str, Any]]) -> None:
    [config] = list(of_kind(objects, "ConfigMap"))
    [secret] = list(of_kind(objects, "Secret"))
    for name in ("worker", "api", "collector"):
        sources = only_container(deployment(objects, name))["envFrom"]
        assert {s["configMapRef"]["name"] for s in sources if "configMapRef" in s} == {config}
        assert {s["secretRef"]["name"] for s in sources if "secretRef" in s} == {secret}


def test_deployment_selectors_match_their_pods(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    assert len(deployments) == 3
    for name, found in deployments.items():
        assert selects(found["spec"]["selector"]["matchLabels"], found), name


@pytest.mark.parametrize("kind", ["Service", "PodDisruptionBudget"])
def test_services_and_budgets_select_one_deployment(
    objects: list[dict[str, Any]], kind: str
) -> None:
    deployments = of_kind(objects, "Deployment")
    covered = set()
    for name, found in of_kind(objects, kind).items():
        selector = found["spec"]["selector"]
        if kind == "PodDisruptionBudget":
            selector = selector["matchLabels"]
        matched = [d for d, spec in deployments.items() if selects(selector, spec)]
        assert len(matched) == 1, f"{kind} {name} selects {matched}"
        covered.add(matched[0])
    assert covered == set(deployments), f"every Deployment has a {kind}"


def test_services_target_container_ports(objects: list[dict[str, Any]]) -> None:
    deployments = of_kind(objects, "Deployment")
    for name, service in of_kind(objects, "Service").items():
        [target] = [d for d in deployments.values() if selects(service["spec"]["selector"], d)]
        container = only_container(target)
        declared = {p["containerPort"] for p in container["ports"]}
        for port in service["spec"]["ports"]:
            assert resolve_port(container, port.get("targetPort", port["port"])) in declared, name
    metrics = [
        s
        for s in of_kind(objects, "Service").values()
        if selects(s["spec"]["selector"], deployment(objects, "worker"))
    ]
    assert [s["spec"].get("clusterIP") for s in metrics] == ["None"]


def test_api_autoscales_on_cpu(objects: list[dict[str, Any]]) -> None:
    [hpa] = of_kind(objects, "HorizontalPodAutoscaler").values()
    assert hpa["apiVersion"] == "autoscaling/v2"
    target = hpa["spec"]["scaleTargetRef"]
    api = deployment(objects, "api")
    assert (target["kind"], target["name"]) == ("Deployment", api["metadata"]["name"])
    assert [m["resource"]["name"] for m in hpa["spec"]["metrics"]] == ["cpu"]
    # Utilization is measured against the request; without one the autoscaler does nothing.
    assert only_container(api)["resources"]["requests"]["cpu"]
    assert hpa["spec"]["minReplicas"] >= 2
    # A fixed replica count would fight the autoscaler at every apply.
    assert "replicas" not in api["spec"]


def test_containers_are_bounded_probed_and_non_root(objects: list[dict[str, Any]]) -> None:
    dockerfile = DOCKERFILE.read_text(encoding="utf-8")
    uid = int(re.findall(r"^USER (\d+)", dockerfile, flags=re.MULTILINE)[-1])
    for name, found in of_kind(objects, "Deployment").items():
        pod = found["spec"]["template"]["spec"]
        assert pod["securityContext"]["runAsNonRoot"] is True, name
        assert pod["securityContext"]["runAsUser"] == uid, name
        for container in pod["containers"]:
            resources = container["resources"]
            for bound in ("requests", "limits"):
                assert set(resources[bound]) >= {"cpu", "memory"}, f"{name}: {bound}"
            assert container["securityContext"]["allowPrivilegeEscalation"] is False
            assert container["securityContext"]["capabilities"]["drop"] == ["ALL"]
            assert "livenessProbe" in container, name
            assert "readinessProbe" in container, name


def test_worker_runs_two_replicas_and_stops_gracefully(objects: list[dict[str, Any]]) -> None:
    worker = deployment(objects, "worker")
    assert worker["spec"]["replicas"] == 2
    assert worker["spec"]["template"]["spec"]["terminationGracePeriodSeconds"] == 60
    assert only_container(worker)["command"] == ["bestand", "worker"]
    assert only_container(deployment(objects, "api"))["command"] == ["bestand", "api"]
    collector = deployment(objects, "collector")
    assert only_container(collector)["command"] == ["bestand", "collector"]
    assert collector["spec"]["replicas"] == 2


def test_probes_ask_the_configured_ports(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(objects, OPERATOR_SECRETS, monkeypatch)
    expected = {
        "worker": {
            "readinessProbe": ("/ready", settings.worker_web_port),
            "startupProbe": ("/health", settings.worker_web_port),
        },
        "api": {
            "livenessProbe": ("/health", settings.api_port),
            "readinessProbe": ("/ready", settings.api_port),
            "startupProbe": ("/health", settings.api_port),
        },
        "collector": {
            "livenessProbe": ("/health", settings.collector_port),
            "readinessProbe": ("/ready", settings.collector_port),
        },
    }
    for name, probes in expected.items():
        container = only_container(deployment(objects, name))
        for probe, (path, port) in probes.items():
            if probe == "startupProbe" and probe not in container:
                continue
            get = container[probe]["httpGet"]
            assert (get["path"], resolve_port(container, get["port"])) == (path, port), probe
    # The worker is alive while its heartbeat is in Redis: the probe command exists.
    live = only_container(deployment(objects, "worker"))["livenessProbe"]["exec"]["command"]
    assert live == ["bestand", "health", "worker", "--this-host"]
    assert build_parser().parse_args(live[1:]).func.__name__ == "cmd_health"
    # The API must listen on the pod IP for the kubelet's probes and the Service.
    assert settings.api_host == "0.0.0.0"  # noqa: S104
    assert settings.collector_host == "0.0.0.0"  # noqa: S104


def test_pods_carry_scrape_annotations(
    objects: list[dict[str, Any]], monkeypatch: pytest.MonkeyPatch
) -> None:
    settings = k8s_settings(objects, OPERATOR_SECRETS, monkeypatch)
    ports = {
        "worker": settings.worker_web_port,
        "api": settings.api_port,
        "collector": settings.collector_port,
    }
    for name, port in ports.items():
        annotations = deployment(objects, name)["spec"]["template"]["metadata"]["annotations"]
        assert annotations["prometheus.io/scrape"] == "true"
        assert annotations["prometheus.io/port"] == str(port)
        assert annotations["prometheus.io/path"] == "/metrics"


def test_compose_redis_runs_with_the_settings_the_local_stack_uses(
    services: dict[str, Any],
) -> None:
    command = [str(part) for part in services["redis"]["command"]]
    for name, value in zip(MEMORY_OPTIONS[::2], MEMORY_OPTIONS[1::2], strict=True):
        assert command[command.index(name) + 1] == value
    assert command[command.index("--appendonly") + 1] == "yes"


def test_compose_redis_loads_the_module_its_image_holds(services: dict[str, Any]) -> None:
    redis = services["redis"]
    assert redis["build"]["target"] == "redis"
    assert redis["build"]["dockerfile"] == "deploy/docker/Dockerfile"
    command = [str(part) for part in redis["command"]]
    loaded = command[command.index("--loadmodule") + 1]
    dockerfile = DOCKERFILE.read_text()
    stage = dockerfile.split("AS redis\n", 1)[1].split("\nFROM ", 1)[0]
    assert f"/opt/bestand/lib/bestand_redis.so {loaded}" in stage
    # The build stage builds the module and leaves it where the redis stage copies it from.
    assert "--manifest-path native/module/Cargo.toml" in dockerfile
    assert "libbestand_redis.so /opt/bestand/lib/bestand_redis.so" in dockerfile
    # Debian's glibc: the module is built against it (an Alpine image cannot load it).
    assert "FROM redis:7.4-bookworm AS redis" in dockerfile
