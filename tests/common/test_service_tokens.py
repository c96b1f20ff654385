"""Service tokens are renewed at half their lifetime, and the cached one keeps being used while
auth (or the Redis behind its limiter) is away, so an outage there costs service calls nothing."""

from __future__ import annotations

import time

import pytest

from bazaar_common.auth import service_tokens
from bazaar_common.errors import ServiceUnavailable
from bazaar_devtools.standin import Registrations, StandIn

pytestmark = pytest.mark.django_db(databases=[])


class _Auth:
    """A stand-in auth issuing numbered tokens; ``failing`` makes it answer 503 as auth does when
    its Redis is away."""

    def __init__(self, lifetime: int) -> None:
        self.lifetime = lifetime
        self.issued = 0
        self.failing = False

    def __call__(self, call) -> tuple[int, object]:
        if self.failing:
            return 503, {"status": 503, "detail": "Service unavailable"}
        self.issued += 1
        return 200, {"access": f"token-{self.issued}", "expires_in": self.lifetime}


@pytest.fixture
def auth(monkeypatch: pytest.MonkeyPatch):
    monkeypatch.setenv("SERVICE_CLIENT_ID", "orders")
    monkeypatch.setenv("SERVICE_CLIENT_SECRET", "secret")
    service_tokens.forget_service_token()
    handler = _Auth(lifetime=40)
    stand_in = StandIn(handler).start()
    registrations = Registrations()
    registrations.register("auth", stand_in.base_url)
    yield handler
    registrations.close()
    stand_in.stop()
    service_tokens.forget_service_token()


_START = time.time()


def _later(monkeypatch: pytest.MonkeyPatch, seconds: float) -> None:
    """The clock ``seconds`` after the first token was fetched (tests run well within a second)."""
    now = _START + seconds
    monkeypatch.setattr(service_tokens.time, "time", lambda: now)


def test_the_token_is_cached_and_renewed_after_half_its_lifetime(auth, monkeypatch):
    _later(monkeypatch, 0)
    first = service_tokens.service_authorization_header()
    again = service_tokens.service_authorization_header()
    _later(monkeypatch, 21)  # past half of the 40 s lifetime
    renewed = service_tokens.service_authorization_header()

    assert (first, again, renewed) == ("Bearer token-1", "Bearer token-1", "Bearer token-2")
    assert auth.issued == 2


def test_while_auth_is_away_the_cached_token_is_used_until_shortly_before_it_expires(auth, monkeypatch):
    _later(monkeypatch, 0)
    assert service_tokens.service_authorization_header() == "Bearer token-1"
    auth.failing = True

    _later(monkeypatch, 21)
    during = service_tokens.service_authorization_header()
    _later(monkeypatch, 22)  # within RENEW_RETRY_SECONDS of the failed renewal: auth not asked
    issued_attempts = auth.issued
    still = service_tokens.service_authorization_header()
    _later(monkeypatch, 30)  # 10 s before expiry: inside the safety margin, no token to give
    with pytest.raises(ServiceUnavailable):
        service_tokens.service_authorization_header()
    auth.failing = False
    back = service_tokens.service_authorization_header()

    assert (during, still) == ("Bearer token-1", "Bearer token-1")
    assert issued_attempts == 1
    assert back == "Bearer token-2"
