"""Reads for the gateway's own pages: the state of services and instances, the merged OpenAPI."""

from __future__ import annotations

import copy
import logging
import threading
import time
from typing import Any

import redis
from django.conf import settings

from bazaar_common.discovery import get_registry
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import CallPolicy
from gateway.routing.routes import ACTIVE_ROUTES
from gateway.routing.runtime import upstream_client

logger = logging.getLogger(__name__)
SCHEMA_PATH = "/schema/openapi.json"
SCHEMA_REF = "#/components/schemas/"


def _health_monitor() -> Any:
    from bazaar_common import discovery

    return discovery._monitor


def gateway_routes() -> list[dict[str, Any]]:
    return [route.describe() for route in ACTIVE_ROUTES]


def gateway_services_overview() -> dict[str, Any]:
    """Every registered service with its instances, their health, heartbeat, in-flight requests and
    circuit state — as seen by *this* gateway process (breakers and in-flight are per process)."""
    registry = get_registry()
    client = upstream_client()
    monitor = _health_monitor()
    registry_error = None
    try:
        names = registry.services()
    except redis.RedisError as exc:
        registry_error = str(exc)
        names = sorted({route.service for route in ACTIVE_ROUTES})
    services = []
    for name in names:
        try:
            instances = registry.lookup(name)
        except redis.RedisError as exc:
            registry_error = str(exc)
            instances = registry.instances(name)
        described = []
        for instance in instances:
            state = monitor.states.get(instance.instance_id) if monitor is not None else None
            described.append(
                {
                    "instance_id": instance.instance_id,
                    "base_url": instance.base_url,
                    "version": instance.version,
                    "metadata": instance.metadata,
                    "registered_at": instance.registered_at,
                    "last_heartbeat": instance.heartbeat_at,
                    "healthy": state.healthy if state is not None else None,
                    "health_status": state.last_status if state is not None else "unchecked",
                    "last_checked": state.last_checked if state is not None else None,
                    **client.describe_instance(instance),
                }
            )
        services.append({"name": name, "circuit": client.describe_service(name), "instances": described})
    return {
        "registry": {"backend": getattr(registry, "backend", "redis"), "error": registry_error},
        "balancer": client.balancer.name,
        "retry_budget_balance": round(client.retry_budget.balance, 2),
        "services": services,
    }


# --------------------------------------------------------------------------------------------
# One OpenAPI document for the public API
# --------------------------------------------------------------------------------------------
_schema_cache: tuple[float, dict[str, Any]] | None = None
_schema_lock = threading.Lock()


def _rename_refs(node: Any, renames: dict[str, str]) -> Any:
    if isinstance(node, dict):
        result = {}
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                name = value[len(SCHEMA_REF) :]
                value = f"{SCHEMA_REF}{renames.get(name, name)}"
            result[key] = _rename_refs(value, renames)
        return result
    if isinstance(node, list):
        return [_rename_refs(item, renames) for item in node]
    return node


def _schema_refs(node: Any) -> set[str]:
    """The component schemas ``node`` refers to directly."""
    if isinstance(node, dict):
        found = set()
        for key, value in node.items():
            if key == "$ref" and isinstance(value, str) and value.startswith(SCHEMA_REF):
                found.add(value[len(SCHEMA_REF) :])
            else:
                found |= _schema_refs(value)
        return found
    if isinstance(node, list):
        return set().union(*(_schema_refs(item) for item in node)) if node else set()
    return set()


def is_public_path(path: str) -> bool:
    return path.startswith("/api/") and not path.startswith("/internal")


def public_part(document: dict[str, Any]) -> dict[str, Any]:
    """A service's document cut to its public paths and the component schemas they reach:
    internal endpoints and their bodies never show in the public document."""
    paths = {path: item for path, item in document.get("paths", {}).items() if is_public_path(path)}
    components = document.get("components", {}).get("schemas", {})
    reachable: set[str] = set()
    pending = _schema_refs(paths)
    while pending:
        name = pending.pop()
        if name in reachable or name not in components:
            continue
        reachable.add(name)
        pending |= _schema_refs(components[name])
    return {
        "paths": paths,
        "schemas": {name: components[name] for name in sorted(reachable)},
        "securitySchemes": document.get("components", {}).get("securitySchemes", {}),
    }


def used_security_schemes(paths: dict[str, Any]) -> set[str]:
    return {
        name
        for item in paths.values()
        for operation in item.values()
        if isinstance(operation, dict)
        for requirement in operation.get("security", [])
        for name in requirement
    }


def merge_openapi(
    documents: dict[str, dict[str, Any]], gateway_document: dict[str, Any], *, servers: list[str] | None = None
) -> dict[str, Any]:
    """Merge the services' documents and the gateway's own: public paths only (never
    ``/internal/``) and only the component schemas they use; a schema renamed
    ``<Service><Name>`` where two services use one name differently; the security schemes the
    operations name (every service documents the same bearer scheme)."""
    merged: dict[str, Any] = {
        "openapi": "3.0.3",
        "info": {
            "title": "Bazaar API",
            "version": "1.0.0",
            "description": "The public API of every Bazaar service, behind the gateway.",
        },
        "servers": [{"url": url} for url in servers or ["/"]],
        "paths": {},
        "components": {"schemas": {}, "securitySchemes": {}},
        "tags": [],
        "x-bazaar-services": sorted(documents),
    }
    schemas = merged["components"]["schemas"]
    security_schemes: dict[str, Any] = {}
    parts = [(service, public_part(document)) for service, document in sorted(documents.items())]
    parts.append(("gateway", public_part(gateway_document)))
    for service, part in parts:
        renames = {
            name: f"{service.capitalize()}{name}"
            for name, schema in part["schemas"].items()
            if name in schemas and schemas[name] != schema
        }
        part = _rename_refs(part, renames)
        for name, schema in part["schemas"].items():
            schemas[renames.get(name, name)] = schema
        merged["paths"].update(part["paths"])
        for scheme_name, scheme in part["securitySchemes"].items():
            security_schemes.setdefault(scheme_name, scheme)
    merged["paths"] = dict(sorted(merged["paths"].items()))
    operations = [op for item in merged["paths"].values() for op in item.values() if isinstance(op, dict)]
    merged["tags"] = [{"name": tag} for tag in sorted({tag for op in operations for tag in op.get("tags", [])})]
    merged["components"]["schemas"] = dict(sorted(schemas.items()))
    used = sorted(used_security_schemes(merged["paths"]) & set(security_schemes))
    merged["components"]["securitySchemes"] = {name: security_schemes[name] for name in used}
    return merged


def service_schemas() -> tuple[dict[str, dict[str, Any]], list[str]]:
    client = upstream_client()
    services = sorted({route.service for route in ACTIVE_ROUTES})
    documents: dict[str, dict[str, Any]] = {}
    missing: list[str] = []
    policy = CallPolicy(connect_timeout=1.0, read_timeout=10.0)
    for service in services:
        try:
            response = client.send(
                service,
                "GET",
                SCHEMA_PATH,
                body=None,
                headers={"accept": "application/json"},
                policy=policy,
            )
            if response.status != 200:
                raise ServiceUnavailable(f"{service} schema answered {response.status}")
            documents[service] = response.json()
        except (ServiceUnavailable, ValueError) as exc:
            logger.warning("schema unavailable", extra={"service": service, "error": str(exc)})
            missing.append(service)
    return documents, missing


def openapi_document(gateway_document: dict[str, Any]) -> dict[str, Any]:
    """The merged document, cached for ``GATEWAY_OPENAPI_CACHE_SECONDS`` (not while incomplete)."""
    global _schema_cache
    cached = _schema_cache
    if cached is not None and time.monotonic() - cached[0] < settings.GATEWAY_OPENAPI_CACHE_SECONDS:
        return copy.deepcopy(cached[1])
    with _schema_lock:
        documents, missing = service_schemas()
        merged = merge_openapi(documents, gateway_document, servers=settings.GATEWAY_PUBLIC_URLS)
        if missing:
            merged["x-bazaar-missing-services"] = missing
        else:
            _schema_cache = (time.monotonic(), merged)
        return merged
