"""Checks of the Helm chart beyond schema validity, run by ``charts/check.sh`` (``make chart-check``).

    python tests/charts/check_chart.py RENDERED.yaml [RENDERED.yaml ...]

1. Every environment variable the services read (found in their source) is listed in
   ``charts/bazaar/values.yaml`` (or is one the chart sets by itself, or is deliberately not set).
2. In each rendered manifest: every component has its web Deployment, Service, HPA and PDB (and its
   worker, beat and migration Job), secrets only come from Secrets, the processes run as uid 10001
   on a read-only root file system, web pods have probes, a preStop sleep and a grace period longer
   than it, discovery is static and names every service's Kubernetes Service.

Not collected by pytest (it needs the rendered output of ``helm template``); exits non-zero with
one line per failed check.
"""

from __future__ import annotations

import re
import sys
from pathlib import Path

import yaml

ROOT = Path(__file__).resolve().parents[2]
VALUES = ROOT / "charts" / "bazaar" / "values.yaml"
SOURCES = {
    "common": ROOT / "common" / "bazaar_common",
    "auth": ROOT / "auth_service" / "auth_service",
    "catalog": ROOT / "catalog_service" / "catalog_service",
    "orders": ROOT / "order_service" / "order_service",
    "profiles": ROOT / "profile_service" / "profile_service",
    "gateway": ROOT / "gateway" / "gateway",
}
ENV_READ = re.compile(
    r"""(?:\benv\w*|require_env|os\.environ\.get|os\.getenv|os\.environ\.pop|os\.environ\[)\(?\s*["']([A-Z][A-Z0-9_]+)["']"""
)
# Read from the environment but never configuration: WSGI/CGI request keys, Django's own bootstrap.
NOT_CONFIGURATION = {
    "CONTENT_LENGTH",
    "CONTENT_TYPE",
    "PATH_INFO",
    "QUERY_STRING",
    "REMOTE_ADDR",
    "DJANGO_SETTINGS_MODULE",
}
# Given on the command line by the chart (bazaar_common.serve --host/--port/--workers/--threads).
SET_AS_ARGUMENTS = {"HOST", "PORT", "WEB_WORKERS", "WEB_THREADS"}
# Set by the chart on worker containers from probes.worker (the liveness heartbeat).
SET_BY_CHART = {"CELERY_HEARTBEAT_FILE", "CELERY_HEARTBEAT_SECONDS", "CELERY_HEARTBEAT_MAX_AGE_SECONDS"}
# Which service calls which over HTTP (values.yaml networkPolicy.calls must say the same).
CALLS = {
    "auth": set(),
    "catalog": {"auth"},
    "orders": {"auth", "catalog", "profiles"},
    "profiles": {"auth", "orders"},
    "gateway": {"auth", "catalog", "orders", "profiles"},
}
COMPONENTS = ("auth", "catalog", "orders", "profiles", "gateway")
SERVICES = ("auth", "catalog", "orders", "profiles")
SECRET_VARIABLES = {"SECRET_KEY", "DATABASE_URL", "SERVICE_CLIENT_SECRET", "SERVICE_CREDENTIALS", "REDIS_URL"}


def variables_read_by_code() -> set[str]:
    names: set[str] = set()
    for source in SOURCES.values():
        for path in source.rglob("*.py"):
            if path.name == "testing.py":
                continue
            names.update(ENV_READ.findall(path.read_text()))
    return {name for name in names if not name.startswith("HTTP_")} - NOT_CONFIGURATION


def variables_in_values() -> set[str]:
    values = yaml.safe_load(VALUES.read_text())
    names: set[str] = set()
    for block in [values["shared"], *(values[name] for name in COMPONENTS)]:
        names.update((block.get("env") or {}).keys())
        names.update((block.get("secretEnv") or {}).keys())
    return names


def check_values_cover_code(failures: list[str]) -> None:
    missing = variables_read_by_code() - variables_in_values() - SET_AS_ARGUMENTS - SET_BY_CHART
    for name in sorted(missing):
        failures.append(f"values.yaml: {name} is read by the code but not listed under any env/secretEnv")


CONFIGMAPS: dict[str, dict[str, str]] = {}  # name → data, of the manifest being checked


def env_of(container: dict) -> dict[str, dict]:
    """The container's environment as the kubelet builds it: envFrom ConfigMaps, then env wins."""
    env: dict[str, dict] = {}
    for source in container.get("envFrom", []):
        name = source["configMapRef"]["name"]
        env.update({key: {"name": key, "value": value} for key, value in CONFIGMAPS.get(name, {}).items()})
    env.update({item["name"]: item for item in container.get("env", [])})
    return env


def check_pod(kind_name: str, pod: dict, failures: list[str], *, bazaar_process: bool = True) -> None:
    """``bazaar_process``: a pod of ours (the PgBouncer pod runs other images, no Django)."""
    security = pod.get("securityContext", {})
    if security.get("runAsUser") != 10001 or not security.get("runAsNonRoot"):
        failures.append(f"{kind_name}: pod does not run as non-root uid 10001")
    if pod.get("automountServiceAccountToken") is not False:
        failures.append(f"{kind_name}: mounts a service-account token")
    for container in pod.get("containers", []) + pod.get("initContainers", []):
        where = f"{kind_name}/{container['name']}"
        context = container.get("securityContext", {})
        if not context.get("readOnlyRootFilesystem") or context.get("allowPrivilegeEscalation") is not False:
            failures.append(f"{where}: root file system not read-only or privilege escalation allowed")
        if "resources" not in container or "requests" not in container["resources"]:
            failures.append(f"{where}: no resource requests")
        mounts = {mount["mountPath"] for mount in container.get("volumeMounts", [])}
        if bazaar_process and container["name"] != "seed-var" and not {"/app/var", "/tmp"} <= mounts:
            failures.append(f"{where}: /app/var and /tmp are not mounted (read-only root file system)")
        for name, item in env_of(container).items():
            if name in SECRET_VARIABLES and "value" in item:
                failures.append(f"{where}: {name} is inline, not from a Secret")
        env = env_of(container)
        if bazaar_process and container["name"] != "seed-var":
            for required in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"):
                if required not in env:
                    failures.append(f"{where}: {required} is not set")
            if env.get("DEBUG", {}).get("value") != "0":
                failures.append(f"{where}: DEBUG is not 0")


def check_manifest(path: Path, failures: list[str]) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
    CONFIGMAPS.clear()
    CONFIGMAPS.update({name: doc.get("data") or {} for (kind, name), doc in objects.items() if kind == "ConfigMap"})
    deployments = {name: doc for (kind, name), doc in objects.items() if kind == "Deployment"}
    prefix = path.stem.split("__")[-1]  # the fullname, given in the file name by check.sh

    def need(kind: str, name: str) -> dict | None:
        found = objects.get((kind, name))
        if found is None:
            failures.append(f"{path.name}: no {kind} {name}")
        return found

    for component in COMPONENTS:
        web = need("Deployment", f"{prefix}-{component}")
        need("Service", f"{prefix}-{component}")
        need("PodDisruptionBudget", f"{prefix}-{component}")
        if path.name.startswith("default"):
            need("HorizontalPodAutoscaler", f"{prefix}-{component}")
        job = need("Job", f"{prefix}-{component}-migrate")
        if job is not None:
            hooks = job["metadata"].get("annotations", {}).get("helm.sh/hook", "")
            if hooks != "pre-install,pre-upgrade":
                failures.append(f"{path.name}: migration Job of {component} is not a pre-install/upgrade hook")
            command = job["spec"]["template"]["spec"]["containers"][0]["command"]
            if command != ["python", "manage.py", "migrate", "--noinput"]:
                failures.append(f"{path.name}: migration Job of {component} runs {command}")
        if web is None:
            continue
        pod = web["spec"]["template"]["spec"]
        container = pod["containers"][0]
        where = f"{path.name}: {prefix}-{component}"
        for probe, route in (("livenessProbe", "/healthz"), ("readinessProbe", "/readyz")):
            if container.get(probe, {}).get("httpGet", {}).get("path") != route:
                failures.append(f"{where}: {probe} is not GET {route}")
        sleep = container.get("lifecycle", {}).get("preStop", {}).get("exec", {}).get("command", [])
        if sleep[:1] != ["sleep"] or int(sleep[1]) >= pod.get("terminationGracePeriodSeconds", 30):
            failures.append(f"{where}: no preStop sleep shorter than the grace period")
        if container["command"][:3] != ["python", "-m", "bazaar_common.serve"] or "0.0.0.0" not in container["command"]:
            failures.append(f"{where}: web does not run bazaar_common.serve on 0.0.0.0")
        annotations = web["spec"]["template"]["metadata"].get("annotations", {})
        if annotations.get("prometheus.io/path") != "/metrics":
            failures.append(f"{where}: no Prometheus scrape annotations")
        env = env_of(container)
        if env.get("DISCOVERY_BACKEND", {}).get("value") != "static":
            failures.append(f"{where}: DISCOVERY_BACKEND is not static")
        expected = ",".join(f"{name}=http://{prefix}-{name}:8000" for name in SERVICES)
        if env.get("DISCOVERY_STATIC", {}).get("value") != expected:
            failures.append(f"{where}: DISCOVERY_STATIC is not {expected}")
        if "INSTANCE_URL" in env:
            failures.append(f"{where}: INSTANCE_URL is set (would register in Redis under the static backend)")
        if component != "auth" and "JWT_JWKS_URL" not in env:
            failures.append(f"{where}: no JWT_JWKS_URL for token verification")
        if component == "auth" and "JWT_SIGNING_KEYS_DIR" not in env:
            failures.append(f"{where}: auth has no JWT_SIGNING_KEYS_DIR")
        for role in ("worker", "beat"):
            if component == "gateway":
                if f"{prefix}-gateway-{role}" in deployments:
                    failures.append(f"{path.name}: the gateway has a {role}")
                continue
            other = deployments.get(f"{prefix}-{component}-{role}")
            if other is None:
                # ci/full-values.yaml switches profiles' beat off on purpose.
                if not (component == "profiles" and role == "beat" and "full" in path.name):
                    failures.append(f"{path.name}: no {role} Deployment for {component}")
                continue
            command = other["spec"]["template"]["spec"]["containers"][0]["command"]
            if command[:4] != ["celery", "-A", f"{web_package(container)}.config", role]:
                failures.append(f"{where}: {role} runs {command}")
            single = other["spec"].get("replicas") == 1 and other["spec"]["strategy"]["type"] == "Recreate"
            if role == "beat" and not single:
                failures.append(f"{where}: beat is not a single replica recreated on update")
    check_network_policies(path.name, prefix, objects, failures)
    check_delivery_objects(path.name, prefix, objects, deployments, failures)
    check_pgbouncer(path.name, prefix, objects, deployments, failures)
    for (kind, name), doc in objects.items():
        if kind in ("Deployment", "Job"):
            ours = name != f"{prefix}-pgbouncer"
            check_pod(f"{path.name}: {name}", doc["spec"]["template"]["spec"], failures, bazaar_process=ours)
        elif kind == "HorizontalPodAutoscaler" and doc["apiVersion"] != "autoscaling/v2":
            failures.append(f"{path.name}: {name} is not autoscaling/v2")


def peer_services(peers: list[dict]) -> set[str]:
    return {peer.get("podSelector", {}).get("matchLabels", {}).get("bazaar.io/service") for peer in peers} - {None}


def check_network_policies(where: str, prefix: str, objects: dict, failures: list[str]) -> None:
    """Default deny, then per component: in from exactly its callers (and the helm test pod), out
    to exactly its callees' web pods, DNS and the data stores."""
    deny = objects.get(("NetworkPolicy", f"{prefix}-default-deny"))
    if deny is None or deny["spec"].get("ingress") or deny["spec"].get("egress"):
        failures.append(f"{where}: no default-deny NetworkPolicy")
    elif sorted(deny["spec"]["policyTypes"]) != ["Egress", "Ingress"]:
        failures.append(f"{where}: the default deny does not cover ingress and egress")
    for component, callees in CALLS.items():
        policy = objects.get(("NetworkPolicy", f"{prefix}-{component}"))
        if policy is None:
            failures.append(f"{where}: no NetworkPolicy for {component}")
            continue
        spec = policy["spec"]
        selected = spec["podSelector"]["matchLabels"]
        if selected.get("bazaar.io/service") != component:
            failures.append(f"{where}: NetworkPolicy {component} selects {selected}")
        web_in = [rule for rule in spec["ingress"] if rule.get("ports") == [{"port": "http", "protocol": "TCP"}]]
        callers = {name for name, their_callees in CALLS.items() if component in their_callees}
        if not web_in or peer_services(web_in[0].get("from", [])) != callers:
            found = peer_services(web_in[0].get("from", [])) if web_in else None
            failures.append(f"{where}: {component} accepts http from {found}, expected {callers}")
        public = [rule for rule in web_in[1:] if "from" not in rule or not peer_services(rule["from"])]
        if component == "gateway" and not public:
            failures.append(f"{where}: the gateway accepts no traffic from the ingress controller")
        if component != "gateway" and public and "full" not in where:
            failures.append(f"{where}: {component} accepts http from outside by default")
        egress = spec["egress"]
        dns = [rule for rule in egress if {"port": 53, "protocol": "UDP"} in rule.get("ports", [])]
        stores = [rule for rule in egress if {"port": 5432, "protocol": "TCP"} in rule.get("ports", [])]
        if not dns or not stores:
            failures.append(f"{where}: {component} cannot reach DNS or the data stores")
        called = set()
        for rule in egress:
            if rule.get("ports") == [{"port": 8000, "protocol": "TCP"}]:
                called |= peer_services(rule["to"])
        if called != callees:
            failures.append(f"{where}: {component} may call {called}, expected {callees}")


def check_delivery_objects(where: str, prefix: str, objects: dict, deployments: dict, failures: list[str]) -> None:
    from bazaar_common.celery import HEARTBEAT_PROBE

    for component in COMPONENTS:
        account = objects.get(("ServiceAccount", f"{prefix}-{component}"))
        if account is None or account.get("automountServiceAccountToken") is not False:
            failures.append(f"{where}: no ServiceAccount {prefix}-{component} without a token")
        config = objects.get(("ConfigMap", f"{prefix}-{component}-env"))
        if config is None or "ALLOWED_HOSTS" in config.get("data", {}):
            failures.append(f"{where}: no env ConfigMap for {component} (ALLOWED_HOSTS must stay inline)")
    for name, deployment in deployments.items():
        if name == f"{prefix}-pgbouncer":
            continue  # check_pgbouncer
        template = deployment["spec"]["template"]
        annotations = template["metadata"].get("annotations", {})
        if not {"checksum/env", "checksum/secrets"} <= set(annotations):
            failures.append(f"{where}: {name} has no checksum annotations (config changes would not roll it)")
        pod = template["spec"]
        if pod.get("serviceAccountName") != f"{prefix}-{name.removeprefix(prefix + '-').split('-')[0]}":
            failures.append(f"{where}: {name} does not run as its component's ServiceAccount")
        container = pod["containers"][0]
        if "metrics" not in {port["name"] for port in container.get("ports", [])} and not name.endswith("-beat"):
            failures.append(f"{where}: {name} has no metrics port")
        if name.endswith("-worker"):
            command = container.get("livenessProbe", {}).get("exec", {}).get("command")
            if command != ["sh", "-c", HEARTBEAT_PROBE]:
                failures.append(f"{where}: {name} liveness is {command}, not bazaar_common.celery.HEARTBEAT_PROBE")
    test = objects.get(("Pod", f"{prefix}-test"))
    if test is None or test["metadata"]["annotations"].get("helm.sh/hook") != "test":
        failures.append(f"{where}: no helm test pod")
    ingress = objects.get(("Ingress", f"{prefix}-gateway"))
    if ingress is not None:
        paths = [p["path"] for rule in ingress["spec"]["rules"] for p in rule["http"]["paths"]]
        if any(path.startswith("/admin") for path in paths):
            failures.append(f"{where}: the gateway's /admin is on the public ingress")
    if "full" in where:
        for kind in ("PodMonitor", "PrometheusRule"):
            if (kind, prefix) not in objects:
                failures.append(f"{where}: no {kind} with every option on")
        if ("ConfigMap", f"{prefix}-dashboards") not in objects:
            failures.append(f"{where}: no dashboards ConfigMap with every option on")
        if ("ScaledObject", f"{prefix}-catalog-worker") not in objects:
            failures.append(f"{where}: no KEDA ScaledObject for the catalog worker")


def check_pgbouncer(where: str, prefix: str, objects: dict, deployments: dict, failures: list[str]) -> None:
    """With pgbouncer.enabled (ci/full-values.yaml): web, worker and beat pods connect through the
    chart's PgBouncer in transaction mode, the migration Jobs directly; the pooler's pool caps,
    probes, exporter, Service and NetworkPolicy are there."""
    name = f"{prefix}-pgbouncer"
    deployment = deployments.get(name)
    if deployment is None:
        if "full" in where:
            failures.append(f"{where}: no PgBouncer with every option on")
        for other, doc in deployments.items():
            if "DB_POOLER_HOST" in env_of(doc["spec"]["template"]["spec"]["containers"][0]):
                failures.append(f"{where}: {other} connects to a pooler although pgbouncer is off")
        return
    for other, doc in deployments.items():
        if other == name:
            continue
        env = env_of(doc["spec"]["template"]["spec"]["containers"][0])
        pooled = (env.get("DB_POOLER_HOST", {}).get("value"), env.get("DB_POOLER_PORT", {}).get("value"))
        if pooled != (name, "6432") or env.get("DB_TRANSACTION_POOLING", {}).get("value") != "1":
            failures.append(f"{where}: {other} does not connect through {name}:6432 in transaction mode")
    for (kind, job), doc in objects.items():
        if kind == "Job" and "DB_POOLER_HOST" in env_of(doc["spec"]["template"]["spec"]["containers"][0]):
            failures.append(f"{where}: {job} migrates through the pooler (must connect directly)")
    config = objects.get(("ConfigMap", name), {}).get("data", {}).get("pgbouncer.ini", "")
    settings = {
        key.strip(): value.strip()
        for key, found, value in (line.partition("=") for line in config.splitlines())
        if found and not key.startswith(";")
    }
    for key in ("pool_mode", "default_pool_size", "reserve_pool_size", "max_db_connections", "max_client_conn"):
        if key not in settings:
            failures.append(f"{where}: pgbouncer.ini has no {key}")
    if settings.get("pool_mode") != "transaction":
        failures.append(f"{where}: PgBouncer is not in transaction mode")
    pod = deployment["spec"]["template"]["spec"]
    containers = {container["name"]: container for container in pod["containers"]}
    pooler = containers.get("pgbouncer", {})
    for probe in ("readinessProbe", "livenessProbe"):
        if pooler.get(probe, {}).get("tcpSocket", {}).get("port") != "postgres":
            failures.append(f"{where}: PgBouncer has no TCP {probe}")
    exporter = containers.get("exporter", {})
    if "metrics" not in {port["name"] for port in exporter.get("ports", [])}:
        failures.append(f"{where}: PgBouncer has no exporter on the metrics port")
    if not {"checksum/config", "checksum/secrets"} <= set(deployment["spec"]["template"]["metadata"]["annotations"]):
        failures.append(f"{where}: PgBouncer's config and userlist changes would not roll it")
    for kind in ("Service", "PodDisruptionBudget", "ServiceAccount", "NetworkPolicy"):
        if (kind, name) not in objects:
            failures.append(f"{where}: no {kind} {name}")
    policy = objects.get(("NetworkPolicy", name))
    if policy is not None:
        allowed = peer_services(policy["spec"]["ingress"][0]["from"])
        if allowed != set(COMPONENTS):
            failures.append(f"{where}: PgBouncer accepts connections from {allowed}, expected {set(COMPONENTS)}")
    for component in COMPONENTS:
        egress = objects.get(("NetworkPolicy", f"{prefix}-{component}"), {}).get("spec", {}).get("egress", [])
        to_pooler = [
            rule
            for rule in egress
            if any(
                peer.get("podSelector", {}).get("matchLabels", {}).get("app.kubernetes.io/component")
                == "pgbouncer-pooler"
                for peer in rule.get("to", [])
            )
        ]
        if not to_pooler:
            failures.append(f"{where}: {component} may not connect to PgBouncer")


def web_package(container: dict) -> str:
    return container["command"][3]


def main(paths: list[str]) -> int:
    failures: list[str] = []
    check_values_cover_code(failures)
    for raw in paths:
        check_manifest(Path(raw), failures)
    for failure in failures:
        print(f"FAIL {failure}")
    print(f"chart checks: {len(paths)} manifest(s), {len(failures)} failure(s)")
    return 1 if failures else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
