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
    missing = variables_read_by_code() - variables_in_values() - SET_AS_ARGUMENTS
    for name in sorted(missing):
        failures.append(f"values.yaml: {name} is read by the code but not listed under any env/secretEnv")


def env_of(container: dict) -> dict[str, dict]:
    return {item["name"]: item for item in container.get("env", [])}


def check_pod(kind_name: str, pod: dict, failures: list[str]) -> None:
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
        if container["name"] != "seed-var" and not {"/app/var", "/tmp"} <= mounts:
            failures.append(f"{where}: /app/var and /tmp are not mounted (read-only root file system)")
        for name, item in env_of(container).items():
            if name in SECRET_VARIABLES and "value" in item:
                failures.append(f"{where}: {name} is inline, not from a Secret")
        env = env_of(container)
        if container["name"] != "seed-var":
            for required in ("DEBUG", "SECRET_KEY", "DATABASE_URL", "REDIS_URL", "ALLOWED_HOSTS"):
                if required not in env:
                    failures.append(f"{where}: {required} is not set")
            if env.get("DEBUG", {}).get("value") != "0":
                failures.append(f"{where}: DEBUG is not 0")


def check_manifest(path: Path, failures: list[str]) -> None:
    documents = [doc for doc in yaml.safe_load_all(path.read_text()) if doc]
    objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
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
    for (kind, name), doc in objects.items():
        if kind in ("Deployment", "Job"):
            check_pod(f"{path.name}: {name}", doc["spec"]["template"]["spec"], failures)
        elif kind == "HorizontalPodAutoscaler" and doc["apiVersion"] != "autoscaling/v2":
            failures.append(f"{path.name}: {name} is not autoscaling/v2")


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
