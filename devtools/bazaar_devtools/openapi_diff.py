"""What changed between two OpenAPI 3.0 documents, and which changes break a client.

A small comparer (no library on the registries we reach does this and is kept up): each
operation is compared with every ``$ref`` resolved, from the client's side:

* **inputs** (parameters, request bodies) must accept everything they accepted before: a removed
  operation, parameter or request field (our input serializers refuse unknown fields), a new
  required parameter, body or field, a narrowed type (another type or format, fewer enum values,
  a lower maximum, a higher minimum, a shorter maximum length, no longer nullable) break;
* **outputs** (success responses) must keep what they promised: a removed status, media type or
  field, a field no longer required, another type, newly nullable, new enum values break.

Everything else (an added operation, an optional input, a new response field, a description)
is a change that is shown but does not break. Each change has a stable id, e.g.
``removed-field:GET /api/v1/orders/{id}:response.200.lines[].sku``, the form the list of intended
breaks uses.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import Any

METHODS = ("get", "put", "post", "delete", "options", "head", "patch", "trace")
REF_PREFIX = "#/components/"


@dataclass(frozen=True)
class Change:
    id: str
    breaking: bool
    detail: str = ""


def resolve(node: Any, document: dict[str, Any], _stack: tuple[str, ...] = ()) -> Any:
    """``node`` with every local ``$ref`` replaced by what it points at (a cycle stays a ref)."""
    if isinstance(node, dict):
        ref = node.get("$ref")
        if isinstance(ref, str) and ref.startswith("#/"):
            if ref in _stack:
                return {"$ref": ref}
            target: Any = document
            for part in ref[2:].split("/"):
                target = target.get(part.replace("~1", "/").replace("~0", "~"), {}) if isinstance(target, dict) else {}
            return resolve(target, document, (*_stack, ref))
        return {key: resolve(value, document, _stack) for key, value in node.items()}
    if isinstance(node, list):
        return [resolve(item, document, _stack) for item in node]
    return node


def operations(document: dict[str, Any]) -> dict[str, dict[str, Any]]:
    """``"GET /path"`` -> the operation, with the path item's parameters merged in."""
    found = {}
    for path, item in document.get("paths", {}).items():
        shared = item.get("parameters", [])
        for method in METHODS:
            if method in item:
                operation = dict(item[method])
                operation["parameters"] = [*shared, *operation.get("parameters", [])]
                found[f"{method.upper()} {path}"] = resolve(operation, document)
    return found


class _Comparer:
    def __init__(self) -> None:
        self.changes: list[Change] = []

    def breaks(self, kind: str, where: str, detail: str = "") -> None:
        self.changes.append(Change(f"{kind}:{where}", True, detail))

    # -- inputs: the new schema must accept whatever the old one accepted ----------------------
    def input_schema(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        if _composite(old) or _composite(new):
            if old != new:
                self.breaks("changed-input-schema", where)
            return
        if old.get("type") and new.get("type") and old["type"] != new["type"]:
            self.breaks("narrowed-type", where, f"{old['type']} -> {new['type']}")
            return
        if new.get("format") and new.get("format") != old.get("format"):
            self.breaks("narrowed-type", where, f"format {old.get('format')} -> {new['format']}")
        if old.get("nullable") and not new.get("nullable"):
            self.breaks("narrowed-type", where, "no longer nullable")
        if "enum" in new and not set(map(_key, old.get("enum", [None]))) <= set(map(_key, new["enum"])):
            removed = sorted(set(map(_key, old.get("enum", []))) - set(map(_key, new["enum"])))
            self.breaks("narrowed-type", where, f"enum without {', '.join(removed) or 'free values'}")
        for bound in ("maximum", "maxLength", "maxItems"):
            if bound in new and (bound not in old or new[bound] < old[bound]):
                self.breaks("narrowed-type", where, f"{bound} {old.get(bound)} -> {new[bound]}")
        for bound in ("minimum", "minLength", "minItems"):
            if bound in new and (bound not in old or new[bound] > old[bound]):
                self.breaks("narrowed-type", where, f"{bound} {old.get(bound)} -> {new[bound]}")
        old_properties, new_properties = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name in sorted(new_required - old_required):
            self.breaks("new-required-field", f"{where}.{name}")
        for name, schema in old_properties.items():
            if schema.get("readOnly"):
                continue
            if name not in new_properties:
                self.breaks("removed-request-field", f"{where}.{name}")
            else:
                self.input_schema(schema, new_properties[name], f"{where}.{name}")
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self.input_schema(old["items"], new["items"], f"{where}[]")

    # -- outputs: the new schema must keep every promise of the old one ------------------------
    def output_schema(self, old: dict[str, Any], new: dict[str, Any], where: str) -> None:
        if _composite(old) or _composite(new):
            if old != new:
                self.breaks("changed-response-schema", where)
            return
        if old.get("type") != new.get("type") and old.get("type"):
            self.breaks("changed-type", where, f"{old.get('type')} -> {new.get('type')}")
            return
        if old.get("format") and new.get("format") != old.get("format"):
            self.breaks("changed-type", where, f"format {old['format']} -> {new.get('format')}")
        if new.get("nullable") and not old.get("nullable"):
            self.breaks("newly-nullable", where)
        if "enum" in old and not set(map(_key, new.get("enum", [None]))) <= set(map(_key, old["enum"])):
            added = sorted(set(map(_key, new.get("enum", []))) - set(map(_key, old["enum"])))
            self.breaks("new-enum-values", where, ", ".join(added) or "any value")
        old_properties, new_properties = old.get("properties", {}), new.get("properties", {})
        old_required, new_required = set(old.get("required", [])), set(new.get("required", []))
        for name, schema in old_properties.items():
            if schema.get("writeOnly"):
                continue
            if name not in new_properties:
                self.breaks("removed-field", f"{where}.{name}")
                continue
            if name in old_required and name not in new_required:
                self.breaks("field-no-longer-required", f"{where}.{name}")
            self.output_schema(schema, new_properties[name], f"{where}.{name}")
        if isinstance(old.get("items"), dict) and isinstance(new.get("items"), dict):
            self.output_schema(old["items"], new["items"], f"{where}[]")

    def operation(self, name: str, old: dict[str, Any], new: dict[str, Any]) -> None:
        old_parameters = {(p.get("in"), p.get("name")): p for p in old.get("parameters", [])}
        new_parameters = {(p.get("in"), p.get("name")): p for p in new.get("parameters", [])}
        for key, parameter in new_parameters.items():
            where = f"{name}:{key[0]}.{key[1]}"
            if parameter.get("required") and not old_parameters.get(key, {}).get("required"):
                self.breaks("new-required-parameter", where)
        for key, parameter in old_parameters.items():
            where = f"{name}:{key[0]}.{key[1]}"
            if key not in new_parameters:
                if key[0] != "header":
                    self.breaks("removed-parameter", where)
                continue
            self.input_schema(parameter.get("schema", {}), new_parameters[key].get("schema", {}), where)

        old_body, new_body = old.get("requestBody"), new.get("requestBody")
        if new_body and new_body.get("required") and not (old_body and old_body.get("required")):
            self.breaks("new-required-body", name)
        for media_type, content in (old_body or {}).get("content", {}).items():
            new_content = (new_body or {}).get("content", {}).get(media_type)
            if new_content is None:
                self.breaks("removed-request-media-type", f"{name}:{media_type}")
                continue
            self.input_schema(content.get("schema", {}), new_content.get("schema", {}), f"{name}:request")

        new_responses = new.get("responses", {})
        for status, response in old.get("responses", {}).items():
            if not str(status).startswith("2"):
                continue
            if status not in new_responses:
                self.breaks("removed-response", f"{name}:{status}")
                continue
            for media_type, content in response.get("content", {}).items():
                new_content = new_responses[status].get("content", {}).get(media_type)
                if new_content is None:
                    self.breaks("removed-response-media-type", f"{name}:{status}:{media_type}")
                    continue
                where = f"{name}:response.{status}"
                self.output_schema(content.get("schema", {}), new_content.get("schema", {}), where)


def _composite(schema: dict[str, Any]) -> bool:
    return any(key in schema for key in ("oneOf", "anyOf", "allOf", "not"))


def _key(value: Any) -> str:
    return json.dumps(value, sort_keys=True)


def compare(old: dict[str, Any], new: dict[str, Any]) -> list[Change]:
    """Every change from ``old`` to ``new``, the breaking ones first."""
    old_operations, new_operations = operations(old), operations(new)
    comparer = _Comparer()
    other: list[Change] = []
    for name, operation in old_operations.items():
        if name not in new_operations:
            comparer.breaks("removed-operation", name)
            continue
        before = len(comparer.changes)
        comparer.operation(name, operation, new_operations[name])
        if len(comparer.changes) == before and operation != new_operations[name]:
            other.append(Change(f"changed-operation:{name}", False, "compatible"))
    other += [Change(f"added-operation:{name}", False) for name in new_operations if name not in old_operations]
    for key in sorted(set(old) | set(new)):
        if key != "paths" and old.get(key) != new.get(key):
            other.append(Change(f"changed-document:{key}", False))
    return [*comparer.changes, *other]
