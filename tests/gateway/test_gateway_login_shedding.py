"""Sign-in load beyond what the auth service can hash is shed at the gateway with 503 +
Retry-After, instead of queueing into timeouts."""

from __future__ import annotations

from concurrent.futures import ThreadPoolExecutor

LOGIN = {"Content-Type": "application/json"}
ROOMY = "anonymous=1000/60,user=1000/60,login=1000/60,checkout=1000/60"


def test_sign_ins_beyond_the_concurrency_limit_are_shed_with_retry_after(gateway_factory, backend):
    auth = backend("auth")
    auth.delay = 1.0  # a slow hash: every admitted sign-in holds its slot for a second
    gateway = gateway_factory(limits=ROOMY, login_concurrency=2, login_queue_seconds=0.1)

    def sign_in(_):
        return gateway.request("POST", "/api/v1/auth/token", body=b'{"email":"a@b.c"}', headers=LOGIN)

    with ThreadPoolExecutor(5) as pool:
        answers = list(pool.map(sign_in, range(5)))

    statuses = sorted(answer.status for answer in answers)
    assert statuses == [200, 200, 503, 503, 503]
    shed = [answer for answer in answers if answer.status == 503]
    assert all(answer.headers["Retry-After"] == "1" for answer in shed)
    assert all(answer.headers["Content-Type"] == "application/problem+json" for answer in shed)
    assert shed[0].json()["detail"] == "Too many sign-ins in progress; retry shortly."
    assert auth.hits == 2  # the shed requests never reached the auth service


def test_slots_are_released_so_later_sign_ins_pass(gateway_factory, backend):
    auth = backend("auth")
    gateway = gateway_factory(limits=ROOMY, login_concurrency=1, login_queue_seconds=0.1)

    answers = [
        gateway.request("POST", "/api/v1/auth/token", body=b'{"email":"a@b.c"}', headers=LOGIN) for _ in range(3)
    ]

    assert [answer.status for answer in answers] == [200, 200, 200]
    assert auth.hits == 3


def test_other_routes_are_not_limited_by_the_sign_in_slots(gateway_factory, backend):
    auth = backend("auth")
    backend("catalog")
    auth.delay = 1.0
    gateway = gateway_factory(limits=ROOMY, login_concurrency=1, login_queue_seconds=0.1)

    with ThreadPoolExecutor(2) as pool:
        slow = pool.submit(gateway.request, "POST", "/api/v1/auth/token", body=b"{}", headers=LOGIN)
        browse = [gateway.request("GET", "/api/v1/catalog/products") for _ in range(3)]
        assert slow.result().status == 200

    assert [answer.status for answer in browse] == [200, 200, 200]
