import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module

pytestmark = pytest.mark.django_db

TOKEN = "/api/v1/auth/token"


def _login(client, email, password, **extra):
    return client.post(TOKEN, {"email": email, "password": password}, format="json", **extra)


@pytest.fixture
def limits(settings):
    settings.LOGIN_MAX_FAILURES_PER_ACCOUNT = 3
    settings.LOGIN_MAX_FAILURES_PER_ADDRESS = 5
    settings.LOGIN_FAILURE_WINDOW_SECONDS = 600
    return settings


def test_repeated_failures_on_an_account_get_429_with_retry_after_even_with_the_right_password(api_client, limits):
    UserFactory(email="yara@example.com")
    for _ in range(3):
        assert _login(api_client, "yara@example.com", "guess-guess-guess").status_code == 401

    blocked = _login(api_client, "yara@example.com", PASSWORD, REMOTE_ADDR="198.51.100.7")

    assert blocked.status_code == 429
    assert 590 <= int(blocked["Retry-After"]) <= 600
    assert blocked.json()["title"] == "Too many requests"


def test_throttling_does_not_reveal_whether_the_email_has_an_account(api_client, limits):
    UserFactory(email="zoe@example.com")
    answers = {}
    for email in ("zoe@example.com", "ghost@example.com"):
        statuses = [
            _login(api_client, email, "guess-guess-guess", REMOTE_ADDR=f"203.0.113.{n}").status_code for n in range(4)
        ]
        answers[email] = statuses

    assert answers["zoe@example.com"] == answers["ghost@example.com"] == [401, 401, 401, 429]


def test_a_success_forgives_the_account_failures(api_client, limits):
    UserFactory(email="abe@example.com")
    for _ in range(2):
        _login(api_client, "abe@example.com", "guess-guess-guess")
    assert _login(api_client, "abe@example.com", PASSWORD).status_code == 200

    for _ in range(2):
        assert _login(api_client, "abe@example.com", "guess-guess-guess").status_code == 401
    assert _login(api_client, "abe@example.com", PASSWORD).status_code == 200


def test_one_address_spraying_many_accounts_is_limited(api_client, limits):
    for n in range(5):
        assert _login(api_client, f"victim{n}@example.com", "guess-guess-guess").status_code == 401

    response = _login(api_client, "victim99@example.com", "guess-guess-guess")

    assert response.status_code == 429
    # another address is not affected
    assert _login(api_client, "victim99@example.com", "guess", REMOTE_ADDR="192.0.2.55").status_code == 401


def test_forwarded_for_is_only_believed_from_a_trusted_proxy(api_client, limits):
    limits.TRUSTED_PROXIES = ["10.0.0.2"]
    for n in range(5):
        # a client talking to us directly cannot rotate its address by sending X-Forwarded-For
        _login(
            api_client,
            f"x{n}@example.com",
            "guess",
            REMOTE_ADDR="192.0.2.10",
            HTTP_X_FORWARDED_FOR=f"1.1.1.{n}",
        )
    direct = _login(api_client, "x9@example.com", "guess", REMOTE_ADDR="192.0.2.10", HTTP_X_FORWARDED_FOR="1.1.1.9")
    via_gateway = _login(
        api_client, "x9@example.com", "guess", REMOTE_ADDR="10.0.0.2", HTTP_X_FORWARDED_FOR="192.0.2.99"
    )

    assert direct.status_code == 429
    assert via_gateway.status_code == 401


def test_password_reset_requests_are_limited_per_account(api_client, settings):
    settings.PASSWORD_RESET_MAX_PER_ACCOUNT = 2
    for n in range(2):
        response = api_client.post(
            "/api/v1/auth/password/reset",
            {"email": "ann@example.com"},
            format="json",
            REMOTE_ADDR=f"192.0.2.{n}",
        )
        assert response.status_code == 202

    blocked = api_client.post("/api/v1/auth/password/reset", {"email": "ANN@example.com"}, format="json")

    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_counters_are_shared_through_redis_not_process_memory(api_client, limits):
    """Two 'instances' share nothing but Redis: the counter the first wrote stops the second."""
    from auth_service.accounts import abuse

    UserFactory(email="bea@example.com")
    for _ in range(3):
        _login(api_client, "bea@example.com", "guess-guess-guess")
    abuse._clients.clear()  # a fresh connection, as another process would have

    assert _login(api_client, "bea@example.com", PASSWORD).status_code == 429


def test_sign_ups_are_limited_per_address(api_client, settings):
    settings.REGISTER_MAX_PER_ADDRESS = 2
    for n in range(2):
        response = api_client.post(
            "/api/v1/auth/register", {"email": f"new{n}@example.com", "password": "a-long-passphrase-1"}, format="json"
        )
        assert response.status_code == 201

    blocked = api_client.post(
        "/api/v1/auth/register", {"email": "new9@example.com", "password": "a-long-passphrase-1"}, format="json"
    )

    assert blocked.status_code == 429
    assert int(blocked["Retry-After"]) > 0


def test_password_reset_requests_are_limited_per_address(api_client, settings):
    settings.PASSWORD_RESET_MAX_PER_ADDRESS = 2
    for n in range(2):
        assert (
            api_client.post("/api/v1/auth/password/reset", {"email": f"p{n}@example.com"}, format="json").status_code
            == 202
        )

    blocked = api_client.post("/api/v1/auth/password/reset", {"email": "p9@example.com"}, format="json")

    assert blocked.status_code == 429


def test_redis_down_fails_closed(api_client, settings):
    """Without the shared counters there would be no limit: sign-in answers 503, not a free pass."""
    from auth_service.accounts import abuse

    UserFactory(email="cal@example.com")
    settings.ABUSE_REDIS_URL = "redis://127.0.0.1:1/0"
    abuse._clients.clear()

    response = _login(api_client, "cal@example.com", PASSWORD)

    assert response.status_code == 503
    assert response["Retry-After"] == "5"
    abuse._clients.clear()


SERVICE_TOKEN = "/internal/v1/auth/service-token"


def _exchange(client, client_id, secret, address):
    body = {"client_id": client_id, "client_secret": secret}
    return client.post(SERVICE_TOKEN, body, format="json", REMOTE_ADDR=address)


def test_sign_in_failures_from_an_address_never_throttle_its_service_token_exchange(api_client, limits):
    limits.SERVICE_CREDENTIALS = "orders:orders-secret"
    # Given an address whose user sign-ins are throttled
    for _ in range(6):
        _login(api_client, "nobody@example.com", "guess-guess-guess", REMOTE_ADDR="203.0.113.5")
    assert _login(api_client, "other@example.com", "guess", REMOTE_ADDR="203.0.113.5").status_code == 429
    # Then a service at that address still gets its token
    assert _exchange(api_client, "orders", "orders-secret", "203.0.113.5").status_code == 200


def test_the_exchange_limits_failures_per_client_id_at_an_address_only(api_client, limits):
    limits.SERVICE_CREDENTIALS = "orders:orders-secret"
    limits.SERVICE_TOKEN_MAX_FAILURES_PER_CLIENT = 3
    for _ in range(3):
        assert _exchange(api_client, "orders", "guess", "203.0.113.9").status_code == 401
    # The guesser is locked out, even with the right secret...
    locked = _exchange(api_client, "orders", "orders-secret", "203.0.113.9")
    assert locked.status_code == 429
    assert int(locked["Retry-After"]) >= 1
    # ...but the real service elsewhere is not.
    assert _exchange(api_client, "orders", "orders-secret", "198.51.100.20").status_code == 200


def test_with_redis_away_the_exchange_still_issues_tokens_but_sign_in_fails_closed(api_client, limits):
    limits.SERVICE_CREDENTIALS = "orders:orders-secret"
    limits.ABUSE_REDIS_URL = "redis://127.0.0.1:1/0"  # nothing listens there
    assert _exchange(api_client, "orders", "orders-secret", "198.51.100.30").status_code == 200
    assert _exchange(api_client, "orders", "wrong", "198.51.100.30").status_code == 401
    refused = _login(api_client, "someone@example.com", "whatever", REMOTE_ADDR="198.51.100.30")
    assert refused.status_code == 503
    assert refused["Retry-After"]
