"""The snapshot comparer: which changes to the public API break a client (bazaar_devtools.openapi)."""

from __future__ import annotations

import copy
import json

import pytest

from bazaar_devtools import openapi
from bazaar_devtools.openapi_diff import compare

ORDER = "GET /api/v1/orders/{order_id}"
CHECKOUT = "POST /api/v1/orders"


def _document():
    order = {
        "type": "object",
        "properties": {
            "id": {"type": "string", "format": "uuid"},
            "status": {"type": "string", "enum": ["pending", "paid"]},
            "note": {"type": "string", "nullable": True},
        },
        "required": ["id", "status"],
    }
    checkout = {
        "type": "object",
        "properties": {
            "lines": {
                "type": "array",
                "items": {
                    "type": "object",
                    "properties": {"product_id": {"type": "integer"}, "quantity": {"type": "integer", "maximum": 1000}},
                    "required": ["product_id"],
                },
            },
            "note": {"type": "string", "maxLength": 200},
        },
    }
    ok = {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/Order"}}}}
    return {
        "openapi": "3.0.3",
        "info": {"title": "t", "version": "1"},
        "paths": {
            "/api/v1/orders/{order_id}": {
                "get": {
                    "parameters": [{"in": "path", "name": "order_id", "required": True, "schema": {"type": "string"}}],
                    "responses": {"200": ok, "404": {"description": "no"}},
                }
            },
            "/api/v1/orders": {
                "post": {
                    "requestBody": {"content": {"application/json": {"schema": {"$ref": "#/components/schemas/In"}}}},
                    "responses": {"202": ok},
                }
            },
        },
        "components": {"schemas": {"Order": order, "In": checkout}},
    }


def _ids(changes, breaking=True):
    return sorted(change.id for change in changes if change.breaking is breaking)


def test_the_same_document_has_no_changes():
    assert compare(_document(), _document()) == []


def test_removed_operations_and_response_fields_break():
    new = _document()
    del new["paths"]["/api/v1/orders/{order_id}"]
    del new["components"]["schemas"]["Order"]["properties"]["status"]

    assert _ids(compare(_document(), new)) == [
        f"removed-field:{CHECKOUT}:response.202.status",
        f"removed-operation:{ORDER}",
    ]


def test_new_required_inputs_and_narrowed_types_break():
    new = _document()
    checkout = new["components"]["schemas"]["In"]
    checkout["required"] = ["lines"]
    checkout["properties"]["note"]["maxLength"] = 100
    checkout["properties"]["lines"]["items"]["properties"]["quantity"]["type"] = "string"
    new["paths"]["/api/v1/orders/{order_id}"]["get"]["parameters"].append(
        {"in": "query", "name": "expand", "required": True, "schema": {"type": "string"}}
    )

    assert _ids(compare(_document(), new)) == [
        f"narrowed-type:{CHECKOUT}:request.lines[].quantity",
        f"narrowed-type:{CHECKOUT}:request.note",
        f"new-required-field:{CHECKOUT}:request.lines",
        f"new-required-parameter:{ORDER}:query.expand",
    ]


def test_responses_that_promise_less_break():
    new = _document()
    order = new["components"]["schemas"]["Order"]
    order["required"] = ["id"]
    order["properties"]["status"]["enum"].append("refunded")
    order["properties"]["id"]["nullable"] = True

    assert _ids(compare(_document(), new)) == sorted(
        f"{kind}:{name}:response.{code}.{field}"
        for name, code in ((ORDER, 200), (CHECKOUT, 202))
        for kind, field in (
            ("field-no-longer-required", "status"),
            ("new-enum-values", "status"),
            ("newly-nullable", "id"),
        )
    )


def test_additions_are_changes_that_do_not_break():
    new = _document()
    new["components"]["schemas"]["Order"]["properties"]["total"] = {"type": "string"}
    new["components"]["schemas"]["In"]["properties"]["coupon"] = {"type": "string"}
    new["paths"]["/api/v1/orders/{order_id}/cancel"] = {"post": {"responses": {"200": {"description": "ok"}}}}

    changes = compare(_document(), new)

    assert _ids(changes) == []
    assert _ids(changes, breaking=False) == [
        "added-operation:POST /api/v1/orders/{order_id}/cancel",
        "changed-document:components",
        f"changed-operation:{ORDER}",
        f"changed-operation:{CHECKOUT}",
    ]


@pytest.fixture
def snapshot(tmp_path, monkeypatch):
    path = tmp_path / "openapi.json"
    path.write_text(openapi.dump(_document()))
    monkeypatch.setattr(openapi, "SNAPSHOT", path)
    monkeypatch.setattr(openapi, "ROOT", tmp_path)
    monkeypatch.setattr(openapi, "INTENDED_BREAKS", tmp_path / "intended.txt")
    monkeypatch.setattr(openapi, "validation_errors", lambda document: [])
    return path


def _serving(monkeypatch, document):
    monkeypatch.setattr(openapi, "merged_document", lambda: copy.deepcopy(document))


def test_the_check_passes_on_the_snapshot_and_fails_on_any_change(snapshot, monkeypatch):
    _serving(monkeypatch, _document())
    assert openapi.main([]) == 0

    changed = _document()
    changed["info"]["description"] = "more words"
    _serving(monkeypatch, changed)
    assert openapi.main([]) == 1  # shown as a change: `make openapi` takes it
    assert openapi.main(["--write"]) == 0
    assert json.loads(snapshot.read_text()) == changed


def test_a_breaking_change_is_written_only_when_marked_as_intended(snapshot, monkeypatch, capsys):
    broken = _document()
    del broken["paths"]["/api/v1/orders/{order_id}"]
    _serving(monkeypatch, broken)

    assert openapi.main(["--write"]) == 1
    assert json.loads(snapshot.read_text()) == _document()
    assert f"BREAKING             removed-operation:{ORDER}" in capsys.readouterr().out

    (snapshot.parent / "intended.txt").write_text(f"removed-operation:{ORDER}  # replaced by the order list\n")
    assert openapi.main(["--write"]) == 0
    assert json.loads(snapshot.read_text()) == broken


def test_the_committed_snapshot_is_valid_openapi():
    from openapi_spec_validator import validate

    validate(json.loads(openapi.SNAPSHOT.read_text()))
