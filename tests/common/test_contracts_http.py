"""Every internal HTTP contract (bazaar_common.contracts.http): what one side writes, the other side
reads back unchanged; answers tolerate a field added by a newer producer, requests refuse unknown
fields; a malformed document is refused with the field named, and a caller turns it into a 503."""

from __future__ import annotations

import inspect
import json
import uuid
from datetime import UTC, datetime
from decimal import Decimal

import pytest

from bazaar_common.contracts import http as internal
from bazaar_common.domain import InvalidInput
from bazaar_common.drf import parse_body
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.http import ServiceResponse

USER = uuid.UUID("6f1e1a5e-1b1b-4c1c-8d8d-000000000001")
AT = datetime(2026, 1, 2, 3, 4, 5, 123456, tzinfo=UTC)
ADDRESS = internal.ShippingAddress(full_name="Ada", line1="1 Way", city="London", country="GB")
PRODUCT = internal.ProductSnapshot(
    id=3, merchant_id=1, sku="S-3", name="Three", price=Decimal("9.90"), currency="EUR", is_active=True, available=2
)
LINE = internal.OrderLine(
    product_id=3, merchant_id=1, sku="S-3", name="Three", unit_price=Decimal("9.90"), quantity=2,
    currency="EUR", line_total=Decimal("19.80"), shipped_at=None,
)  # fmt: skip
EVENT = internal.OrderEvent(kind="created", from_status="", to_status="pending", actor="customer", reason="", at=AT)
ORDER = internal.OrderDocument(
    id=uuid.UUID(int=7), status="pending", customer_id=USER, buyer_reference="buyer_1", customer_email=None,
    currency="EUR", lines=[LINE],
    totals=internal.OrderTotals(
        subtotal=Decimal("19.80"), total=Decimal("19.80"), refunded=Decimal("0"), currency="EUR"
    ),
    shipping_address=ADDRESS, rejection=None, timeline=[EVENT], payment_due_at=AT, created_at=AT, updated_at=AT,
    reserved_at=None, paid_at=None, shipped_at=None, delivered_at=None, cancelled_at=None,
)  # fmt: skip
RESERVATION = internal.ReservationState(order_id="o-1", status=internal.ReservationStatus.RELEASED, release_reason="x")

SAMPLES: list[internal.Body] = [
    internal.ServiceTokenRequest(client_id="orders", client_secret="s3cret"),
    internal.ServiceToken(access="token", expires_in=300),
    internal.AdminLoginRequest.parse({"email": "a@example.com", "password": "pw", "client_ip": "192.0.2.1"}),
    internal.StaffIdentityAnswer(user_id=USER, email="a@example.com", roles=["support"]),
    internal.Account(id=USER, email="a@example.com", roles=["customer"], is_active=True, date_joined=AT, last_login=AT),
    internal.PasswordCheckRequest(password="pw"),
    PRODUCT,
    internal.CatalogProducts(results=[PRODUCT], missing=[4]),
    internal.UserMerchants(merchant_ids=[1, 2]),
    RESERVATION,
    internal.Reservations(results=[RESERVATION]),
    ADDRESS,
    internal.DefaultShippingAddress(id=5, **ADDRESS.model_dump()),
    LINE,
    internal.OrderTotals(subtotal=Decimal("1"), total=Decimal("1"), refunded=Decimal("0"), currency="EUR"),
    EVENT,
    ORDER,
    internal.CustomerOrders(results=[ORDER]),
]


def _body_classes() -> set[type[internal.Body]]:
    return {
        cls
        for _, cls in inspect.getmembers(internal, inspect.isclass)
        if issubclass(cls, internal.Body) and cls not in (internal.Body, internal.RequestBody)
    }


def test_every_body_class_has_a_sample():
    assert {type(sample) for sample in SAMPLES} == _body_classes()


def test_every_endpoint_names_its_classes_and_is_found_by_a_concrete_path():
    for endpoint in internal.INTERNAL_ENDPOINTS:
        assert endpoint.answer is None or endpoint.answer in _body_classes()
        concrete = endpoint.url(user_id=USER)
        assert internal.endpoint(endpoint.method, concrete) is endpoint
    assert internal.endpoint("GET", "/internal/v1/nobody") is None


@pytest.mark.parametrize("sample", SAMPLES, ids=lambda s: type(s).__name__)
def test_what_one_side_writes_the_other_reads_back_unchanged(sample):
    wire = json.dumps(sample.to_json())  # what travels over HTTP

    assert type(sample).parse(wire) == sample
    assert type(sample).parse(wire.encode()) == sample
    assert type(sample).parse(json.loads(wire)) == sample


def test_money_travels_as_a_string_with_two_places():
    assert PRODUCT.to_json()["price"] == "9.90"
    assert internal.ProductSnapshot.parse({**PRODUCT.to_json(), "price": "5"}).to_json()["price"] == "5.00"


def test_an_answer_may_carry_a_field_the_caller_does_not_know_yet():
    newer = {**PRODUCT.to_json(), "weight_grams": 250}

    assert internal.ProductSnapshot.parse(newer) == PRODUCT


def test_a_request_with_a_field_the_endpoint_does_not_know_is_refused():
    with pytest.raises(internal.MalformedBody) as refused:
        internal.PasswordCheckRequest.parse({"password": "pw", "remember": True})

    assert refused.value.errors == {"remember": ["Extra inputs are not permitted"]}


@pytest.mark.parametrize(
    ("cls", "document", "errors"),
    [
        (internal.CatalogProducts, {"results": [{"id": "3"}], "missing": []}, "results.0.id"),
        (internal.ServiceToken, {"access": "t", "expires_in": True}, "expires_in"),
        (internal.Reservations, {"results": [{**RESERVATION.to_json(), "status": "lost"}]}, "results.0.status"),
        (internal.UserMerchants, [1, 2], "(body)"),
        (internal.Account, {"id": "not-a-uuid"}, "id"),
    ],
)
def test_a_malformed_document_is_refused_with_the_field_named(cls, document, errors):
    with pytest.raises(internal.MalformedBody) as refused:
        cls.parse(document)

    assert errors in refused.value.errors


def test_an_unreadable_answer_is_the_other_service_failing():
    response = ServiceResponse(status=200, headers={}, body=b'{"merchant_ids": "all"}', instance_id="i-1")

    with pytest.raises(ServiceUnavailable, match="The catalog service answered with an unreadable document."):
        response.parse(internal.UserMerchants, service="catalog")
    assert ServiceResponse(200, {}, b'{"merchant_ids": [3]}', "i-1").parse(
        internal.UserMerchants, service="catalog"
    ) == internal.UserMerchants(merchant_ids=[3])


def test_an_endpoint_refuses_a_body_outside_its_contract_in_the_platform_s_words():
    with pytest.raises(InvalidInput) as refused:
        parse_body(internal.ServiceTokenRequest, {"client_id": "", "extra": 1})

    assert refused.value.field_errors == {
        "client_id": ["String should have at least 1 character"],
        "client_secret": ["This field is required."],
        "extra": ["Unknown field."],
    }
    with pytest.raises(InvalidInput):
        parse_body(internal.ServiceTokenRequest, ["not", "an", "object"])


def test_a_reservations_query_asks_one_thing():
    assert internal.ReservationsQuery(order_ids=["a", "b"]).to_query() == {"order_ids": "a,b"}
    assert internal.ReservationsQuery(held_idle_seconds=60).to_query() == {"held_idle_seconds": "60"}
    with pytest.raises(ValueError, match="either"):
        internal.ReservationsQuery().to_query()
    with pytest.raises(ValueError, match="at most 200"):
        internal.ProductsQuery(ids=list(range(1, 202)))
