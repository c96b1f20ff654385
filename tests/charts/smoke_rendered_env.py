"""Run the platform on this machine with exactly the environment the chart renders for Kubernetes.

    .venv/bin/python tests/charts/smoke_rendered_env.py RENDERED.yaml     # bash charts/check.sh --smoke

The rendered objects of release "bazaar" in namespace "bazaar" are read; every container gets the
env of its Deployment/Job (``DEBUG=0``, static discovery, computed ``ALLOWED_HOSTS``,
``JWT_JWKS_URL``...), with the secrets filled in locally (PostgreSQL at ``SMOKE_DATABASE_URL``,
default ``postgres://postgres@127.0.0.1:5432``; a redis-server of its own, started and stopped
here, so no counter or cache of anybody else's is touched), a fresh
RS256 key as the mounted key directory, ``$(POD_IP)`` as 127.0.0.1 and the Service names mapped to
local ports. Then: every migration Job's command, every web, worker and beat command; the probes
and a Prometheus scrape with the Host headers Kubernetes sends; a foreign Host refused; and
through the gateway a public catalog read, sign-up, sign-in and authenticated reads of auth,
profiles, orders and cart. Not collected by pytest: it needs the rendered chart and a database
server. Exits non-zero with one line per failure.
"""

from __future__ import annotations

import json
import os
import re
import secrets
import signal
import subprocess
import sys
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import yaml

from bazaar_devtools.platform import EmbeddedRedis, drop_postgres_database, ensure_postgres_database, free_port

ROOT = Path(__file__).resolve().parents[2]
BIN = ROOT / ".venv" / "bin"
RELEASE = "bazaar"
NAMESPACE = "bazaar"
WORKDIRS = {
    "auth": "auth_service",
    "catalog": "catalog_service",
    "orders": "order_service",
    "profiles": "profile_service",
    "gateway": "gateway",
}
DATABASE_SERVER = os.environ.get("SMOKE_DATABASE_URL", "postgres://postgres@127.0.0.1:5432").rstrip("/")
PASSWORD = "a-long-Smoke-passphrase-2026"


class Smoke:
    def __init__(self, rendered: Path) -> None:
        documents = [doc for doc in yaml.safe_load_all(rendered.read_text()) if doc]
        self.objects = {(doc["kind"], doc["metadata"]["name"]): doc for doc in documents}
        self.scratch = Path(tempfile.mkdtemp(prefix="bazaar-chart-smoke-"))
        self.ports = {component: free_port() for component in WORKDIRS}
        self.clients = {component: secrets.token_urlsafe(16) for component in WORKDIRS}
        self.key_dir = self.scratch / "jwt-signing-keys"
        self.processes: list[tuple[str, subprocess.Popen]] = []
        self.failures: list[str] = []
        self.redis = EmbeddedRedis(directory=self.scratch / "redis")

    # --- environment ------------------------------------------------------------------------
    def make_signing_key(self) -> None:
        self.key_dir.mkdir()
        kid = time.strftime("%Y%m%dT%H%M%S000000Z", time.gmtime()) + "-" + secrets.token_hex(4)
        subprocess.run(
            ["openssl", "genpkey", "-algorithm", "RSA", "-pkeyopt", "rsa_keygen_bits:2048"],
            stdout=(self.key_dir / f"{kid}.pem").open("wb"),
            stderr=subprocess.DEVNULL,
            check=True,
        )

    def database_url(self, component: str) -> str:
        return f"{DATABASE_SERVER}/bazaar_chartsmoke_{component}"

    def secret(self, component: str, key: str) -> str | None:
        return {
            "SECRET_KEY": secrets.token_urlsafe(40),
            "DATABASE_URL": self.database_url(component),
            "REDIS_URL": self.redis.url,
            "SERVICE_CLIENT_SECRET": self.clients[component],
            "SERVICE_CREDENTIALS": ",".join(f"{name}:{secret}" for name, secret in self.clients.items()),
        }.get(key)

    def environment(self, component: str, container: dict) -> dict[str, str]:
        env = {"PATH": os.environ["PATH"], "HOME": str(self.scratch)}
        for source in container.get("envFrom", []):  # the component's ConfigMap, as the kubelet does
            env.update(self.objects[("ConfigMap", source["configMapRef"]["name"])]["data"])
        if "METRICS_PORT" in env:  # one pod per machine in Kubernetes; many processes here
            env["METRICS_PORT"] = str(free_port())
        for item in container["env"]:
            if "value" in item:
                env[item["name"]] = item["value"]
                continue
            source = item["valueFrom"]
            if "secretKeyRef" in source:
                value = self.secret(component, source["secretKeyRef"]["key"])
                if value is None and not source["secretKeyRef"].get("optional"):
                    self.failures.append(f"{component}: no local value for required secret {item['name']}")
                if value is not None:
                    env[item["name"]] = value
            elif source["fieldRef"]["fieldPath"] == "status.podIP":
                env[item["name"]] = "127.0.0.1"
            else:
                env[item["name"]] = f"{component}-smoke"
        service_url = re.compile(rf"http://{RELEASE}-(\w+):8000")
        for name, value in env.items():
            value = re.sub(r"\$\((\w+)\)", lambda match: env.get(match.group(1), ""), value)
            env[name] = service_url.sub(lambda match: f"http://127.0.0.1:{self.ports[match.group(1)]}", value)
        if "JWT_SIGNING_KEYS_DIR" in env:
            env["JWT_SIGNING_KEYS_DIR"] = str(self.key_dir)
        var_dir = self.scratch / f"var-{component}"
        var_dir.mkdir(exist_ok=True)
        env["BAZAAR_VAR_DIR"] = str(var_dir)
        return env

    def command(self, container: dict, env: dict[str, str]) -> list[str]:
        local = {"python": str(BIN / "python"), "celery": str(BIN / "celery")}
        command = [local.get(part, part) for part in container["command"]]
        command = [re.sub(r"\$\((\w+)\)", lambda match: env.get(match.group(1), ""), part) for part in command]
        return [part.replace("/app/var", env["BAZAAR_VAR_DIR"]) for part in command]

    # --- processes --------------------------------------------------------------------------
    def migrate(self) -> None:
        for component in WORKDIRS:
            drop_postgres_database(self.database_url(component))
            ensure_postgres_database(self.database_url(component))
            job = self.objects[("Job", f"{RELEASE}-{component}-migrate")]
            container = job["spec"]["template"]["spec"]["containers"][0]
            env = self.environment(component, container)
            result = subprocess.run(
                self.command(container, env), cwd=ROOT / WORKDIRS[component], env=env, capture_output=True, text=True
            )
            print(f"migrate {component}: exit {result.returncode}")
            if result.returncode:
                self.failures.append(f"migrate {component}: {result.stderr[-1500:]}")

    def start(self, name: str, component: str, container: dict, *, port: int | None = None) -> None:
        env = self.environment(component, container)
        command = self.command(container, env)
        if port is not None:
            command[command.index("--port") + 1] = str(port)
            command[command.index("--host") + 1] = "127.0.0.1"
        log = (self.scratch / f"{name}.log").open("w")
        process = subprocess.Popen(
            command,
            cwd=ROOT / WORKDIRS[component],
            env=env,
            stdout=log,
            stderr=subprocess.STDOUT,
            start_new_session=True,
        )
        self.processes.append((name, process))

    def start_all(self) -> None:
        for (kind, name), doc in self.objects.items():
            if kind != "Deployment":
                continue
            labels = doc["metadata"]["labels"]
            component, role = labels["bazaar.io/service"], labels["bazaar.io/role"]
            container = doc["spec"]["template"]["spec"]["containers"][0]
            self.start(name, component, container, port=self.ports[component] if role == "web" else None)

    def stop_all(self) -> None:
        for _, process in self.processes:
            if process.poll() is None:
                os.killpg(process.pid, signal.SIGTERM)
        for _, process in self.processes:
            try:
                process.wait(timeout=30)
            except subprocess.TimeoutExpired:
                os.killpg(process.pid, signal.SIGKILL)

    # --- checks -----------------------------------------------------------------------------
    @staticmethod
    def request(
        url: str, *, host: str | None = None, data: dict | None = None, token: str | None = None
    ) -> tuple[int, bytes]:
        headers = {"Content-Type": "application/json"}
        if host:
            headers["Host"] = host
        if token:
            headers["Authorization"] = f"Bearer {token}"
        body = json.dumps(data).encode() if data is not None else None
        try:
            with urllib.request.urlopen(urllib.request.Request(url, data=body, headers=headers), timeout=10) as answer:
                return answer.status, answer.read()
        except urllib.error.HTTPError as error:
            return error.code, error.read()

    def wait_for_web(self) -> None:
        deadline = time.monotonic() + 90
        for component, port in self.ports.items():
            while True:
                try:
                    if self.request(f"http://127.0.0.1:{port}/healthz", host="localhost")[0] == 200:
                        break
                except OSError:
                    pass
                if time.monotonic() > deadline:
                    self.failures.append(f"{component}: web never answered /healthz")
                    break
                time.sleep(0.5)

    def check_hosts_and_probes(self) -> None:
        for component, port in self.ports.items():
            service = f"{RELEASE}-{component}"
            hosts = ("localhost", "127.0.0.1:8000", f"{service}:8000", f"{service}.{NAMESPACE}.svc.cluster.local:8000")
            for host in hosts:
                for path in ("/healthz", "/readyz", "/metrics"):
                    status, _ = self.request(f"http://127.0.0.1:{port}{path}", host=host)
                    if status != 200:
                        self.failures.append(f"{component}: GET {path} with Host {host} answered {status}")
            status, _ = self.request(f"http://127.0.0.1:{port}/healthz", host="attacker.example")
            if status != 400:
                self.failures.append(f"{component}: a foreign Host header was answered {status}, not 400")

    def check_through_gateway(self) -> None:
        gateway = f"http://127.0.0.1:{self.ports['gateway']}"
        expect = [("GET /api/v1/catalog/products", self.request(f"{gateway}/api/v1/catalog/products"), 200)]
        email = f"smoke-{secrets.token_hex(4)}@example.com"
        credentials = {"email": email, "password": PASSWORD}
        expect.append(
            ("POST /api/v1/auth/register", self.request(f"{gateway}/api/v1/auth/register", data=credentials), 201)
        )
        signed_in = self.request(f"{gateway}/api/v1/auth/token", data=credentials)
        expect.append(("POST /api/v1/auth/token", signed_in, 200))
        if signed_in[0] == 200:
            token = json.loads(signed_in[1])["access"]
            for path in ("/api/v1/auth/me", "/api/v1/profiles/me", "/api/v1/orders", "/api/v1/cart"):
                expect.append((f"GET {path}", self.request(f"{gateway}{path}", token=token), 200))
        for what, (status, body), wanted in expect:
            print(f"{what}: {status}")
            if status != wanted:
                self.failures.append(f"{what} through the gateway: {status} {body[:300]!r}")

    def check_background_alive(self) -> None:
        time.sleep(3)
        for name, process in self.processes:
            if process.poll() is not None:
                log = (self.scratch / f"{name}.log").read_text()
                self.failures.append(f"{name} exited {process.returncode}: {log[-800:]}")

    def run(self) -> int:
        self.make_signing_key()
        self.redis.start()
        try:
            self.migrate()
            if not self.failures:
                try:
                    self.start_all()
                    self.wait_for_web()
                    self.check_hosts_and_probes()
                    self.check_through_gateway()
                    self.check_background_alive()
                finally:
                    self.stop_all()
        finally:
            self.redis.stop()
        for failure in self.failures:
            print(f"FAIL {failure}")
        print(f"chart smoke: {len(self.processes)} processes, {len(self.failures)} failure(s); logs in {self.scratch}")
        return 1 if self.failures else 0


if __name__ == "__main__":
    sys.exit(Smoke(Path(sys.argv[1])).run())
