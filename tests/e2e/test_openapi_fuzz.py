"""Schemathesis against the running platform (issue 11's fuzzing, issue 13's schema check).

Every operation of the gateway's merged document, and of each service's own document on its own
port, gets a bounded number of generated requests (deterministic: a failure reproduces), with a
token of a role the operation needs. Invariant: no answer is a 5xx, and every answer matches what
the document says of it (status code, content type, headers, body schema).

Isolation from the other tests on the session platform: the requests come from their own
loopback address (127.0.0.77), so the per-address rate limits and sign-in counters they fill
are not 127.0.0.1's; the tokens are a fresh customer's and a fresh merchant-role user's (no
merchant of the demo data), the demo admin only where the admin role is needed (user and merchant
administration, by ids that do not exist); the fuzz customer's orders are cancelled afterwards.
"""

from __future__ import annotations

import time
import uuid
from typing import Any

import pytest
import requests
import schemathesis
from hypothesis import HealthCheck, Phase, given, settings
from requests.adapters import HTTPAdapter
from schemathesis import checks as st_checks

from bazaar_common.demo import DEMO_ADMIN

FUZZ_SOURCE_ADDRESS = "127.0.0.77"
ACCEPT_JSON = {"accept": "application/json"}
GATEWAY_EXAMPLES = 6
SERVICE_EXAMPLES = 3
CHECKS = [
    st_checks.not_a_server_error,
    st_checks.status_code_conformance,
    st_checks.content_type_conformance,
    st_checks.response_headers_conformance,
    st_checks.response_schema_conformance,
]
FUZZ_SETTINGS = settings(
    max_examples=GATEWAY_EXAMPLES,
    deadline=None,
    database=None,
    derandomize=True,
    phases=[Phase.explicit, Phase.generate],  # no shrinking: every failure is reported as found
    suppress_health_check=list(HealthCheck),
)


class _SourceAddressAdapter(HTTPAdapter):
    def init_poolmanager(self, *args: Any, **kwargs: Any) -> None:
        kwargs["source_address"] = (FUZZ_SOURCE_ADDRESS, 0)
        super().init_poolmanager(*args, **kwargs)


def _session() -> requests.Session:
    session = requests.Session()
    session.mount("http://", _SourceAddressAdapter())
    return session


@pytest.fixture(scope="module")
def fuzz_tokens(platform):
    fuzz = _session()

    def api(method: str, path: str, token: str | None = None, **kwargs: Any) -> requests.Response:
        headers = {"Authorization": f"Bearer {token}"} if token else {}
        return fuzz.request(method, f"{platform.gateway_url}{path}", headers=headers, timeout=30, **kwargs)

    def fresh_user() -> tuple[str, str]:
        email, password = f"fuzz-{uuid.uuid4().hex[:10]}@example.com", f"Pw-{uuid.uuid4().hex}"
        assert api("POST", "/api/v1/auth/register", json={"email": email, "password": password}).status_code == 201
        answer = api("POST", "/api/v1/auth/token", json={"email": email, "password": password})
        assert answer.status_code == 200, answer.text
        return password, answer.json()["access"]

    admin = platform.token(DEMO_ADMIN.email)
    _, customer = fresh_user()
    merchant_password, merchant = fresh_user()
    merchant_id = api("GET", "/api/v1/auth/me", merchant).json()["id"]
    granted = api("POST", f"/api/v1/auth/users/{merchant_id}/roles", admin, json={"role": "merchant"})
    assert granted.status_code == 200, granted.text
    # a token that carries the new role
    email = api("GET", "/api/v1/auth/me", merchant).json()["email"]
    merchant = api("POST", "/api/v1/auth/token", json={"email": email, "password": merchant_password}).json()["access"]
    yield {"admin": admin, "customer": customer, "merchant": merchant}
    # Release whatever the fuzz customer's checkouts hold, for the tests after this one.
    orders = api("GET", "/api/v1/orders?page_size=100", customer).json().get("results", [])
    for order in orders:
        if order["status"] not in ("cancelled", "expired", "rejected"):
            api("POST", f"/api/v1/orders/{order['id']}/cancel", customer, json={"reason": "fuzz clean-up"})


def _token_for(path: str, tokens: dict[str, str]) -> str:
    if path.startswith(("/api/v1/auth/users", "/api/v1/gateway/services", "/api/v1/catalog/merchant/merchants")):
        return tokens["admin"]
    if path.startswith("/api/v1/catalog/merchant"):
        return tokens["merchant"]
    return tokens["customer"]


def _fuzz_operation(
    operation: Any, base_url: str, session: requests.Session, token: str, examples: int
) -> tuple[int, str | None]:
    """Up to ``examples`` generated requests to one operation: (sent, the first failure)."""
    sent = 0
    found: list[str] = []
    headers = {"Authorization": f"Bearer {token}"}

    @given(case=operation.as_strategy())
    @settings(FUZZ_SETTINGS, max_examples=examples)
    def run(case: Any) -> None:
        nonlocal sent
        if found:
            return  # one failure per operation is enough to report
        response = case.call(base_url=base_url, session=session, headers=headers, timeout=30)
        sent += 1
        try:
            case.validate_response(response, checks=CHECKS)
        except (Exception, BaseExceptionGroup) as failure:  # a group of the failed checks
            found.append(f"{operation.label}: {failure}\n    {case.as_curl_command(headers=headers)}")

    run()
    return sent, found[0] if found else None


def fuzz(document: dict[str, Any], base_url: str, tokens: dict[str, str], examples: int) -> tuple[int, list[str]]:
    """Run every operation of ``document`` against ``base_url``: (requests sent, failures)."""
    schema = schemathesis.openapi.from_dict(document)
    session = _session()
    sent = 0
    failures: list[str] = []
    for result in schema.get_all_operations():
        operation = result.ok()
        count, failure = _fuzz_operation(operation, base_url, session, _token_for(operation.path, tokens), examples)
        sent += count
        if failure:
            failures.append(failure)
    return sent, failures


def test_no_5xx_and_no_answer_outside_the_documents_anywhere(platform, fuzz_tokens):
    platform.ensure_one_instance_each()
    started, cpu = time.monotonic(), time.process_time()
    targets = [("gateway", platform.gateway_url, platform.api("GET", "/api/schema/openapi.json").json())]
    for service in ("auth", "catalog", "orders", "profiles"):
        url = platform.url(service)
        targets.append(
            (service, url, requests.get(f"{url}/schema/openapi.json", headers=ACCEPT_JSON, timeout=30).json())
        )

    report = []
    failures: list[str] = []
    for name, url, document in targets:
        examples = GATEWAY_EXAMPLES if name == "gateway" else SERVICE_EXAMPLES
        sent, found = fuzz(document, url, fuzz_tokens, examples)
        report.append(f"{name}: {sent} requests, {len(found)} failing operations")
        failures += found

    print(
        f"\nfuzz: {'; '.join(report)} in {time.monotonic() - started:.0f}s "
        f"(test process CPU {time.process_time() - cpu:.0f}s)"
    )
    assert not failures, "\n\n".join(failures)
