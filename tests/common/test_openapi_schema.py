"""Every operation documents the errors the platform answers, as problem+json (bazaar_common.openapi).

Built from the catalog's own URLs (the suite runs with the catalog's settings): public reads, and
merchant writes that need a token.
"""

from __future__ import annotations

import pytest
from drf_spectacular.generators import SchemaGenerator

PROBLEM = {"$ref": "#/components/schemas/Problem"}


@pytest.fixture(scope="module")
def document():
    return SchemaGenerator().get_schema(request=None, public=True)


def _codes(operation):
    return sorted(operation["responses"])


def test_a_public_read_documents_400_404_429_503_504_and_no_token_errors(document):
    operation = document["paths"]["/api/v1/catalog/products/{product_id}"]["get"]

    assert _codes(operation) == ["200", "304", "400", "404", "429", "503", "504"]
    for code in ("400", "404", "429", "503", "504"):
        assert operation["responses"][code]["content"] == {"application/problem+json": {"schema": PROBLEM}}
    # The view's own description of its 404 is kept; the body is the problem.
    assert operation["responses"]["404"]["description"] == "No active product with this id."


def test_a_write_that_needs_a_token_documents_401_403_413_415(document):
    operation = document["paths"]["/api/v1/catalog/merchant/products"]["post"]

    assert {"400", "401", "403", "413", "415", "429", "503"} <= set(operation["responses"])
    assert operation["security"] == [{"bearerAuth": []}]


def test_429_503_and_504_document_retry_after_and_the_rate_limit_headers(document):
    responses = document["paths"]["/api/v1/catalog/products"]["get"]["responses"]

    assert {"Retry-After", "RateLimit", "RateLimit-Policy"} <= set(responses["429"]["headers"])
    assert responses["429"]["headers"]["Retry-After"]["schema"] == {"type": "integer", "minimum": 0}
    assert set(responses["503"]["headers"]) == set(responses["504"]["headers"]) == {"Retry-After"}


def test_the_problem_schema_is_the_body_the_error_handler_writes(document):
    from bazaar_common.errors import problem_body

    problem = document["components"]["schemas"]["Problem"]
    body = problem_body(400, "One or more fields are invalid.", errors=[{"field": "sku", "reason": "Required."}])

    assert set(problem["required"]) <= set(body)
    assert set(body) <= set(problem["properties"])
    assert document["components"]["schemas"]["FieldError"]["required"] == ["field", "reason"]
