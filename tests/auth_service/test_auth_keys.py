import io
import json
import os
import subprocess
import sys
from pathlib import Path

import jwt
import pytest
from auth_factories import UserFactory  # noqa: I001 - this suite's factories module
from django.core.exceptions import ImproperlyConfigured
from django.core.management import call_command

from auth_service.accounts import keys
from bazaar_common.auth import keys as platform_keys
from bazaar_common.auth.tokens import InvalidToken, verify_access_token

pytestmark = pytest.mark.django_db

JWKS = "/api/v1/auth/.well-known/jwks.json"
REPO = Path(__file__).resolve().parents[2]


@pytest.fixture
def fresh_keys(settings, tmp_path, monkeypatch):
    """A key directory of its own, and the in-process verifier reading the service's real JWKS."""
    settings.JWT_SIGNING_KEYS_DIR = str(tmp_path / "keys")
    monkeypatch.delenv("JWT_JWKS_FILE", raising=False)
    platform_keys.default_keyset.reset()
    yield tmp_path / "keys"
    platform_keys.default_keyset.reset()


def _kid(token: str) -> str:
    return jwt.get_unverified_header(token)["kid"]


def test_jwks_publishes_public_keys_only(api_client, fresh_keys):
    response = api_client.get(JWKS)

    assert response.status_code == 200
    assert response["Cache-Control"] == "public, max-age=60"
    (jwk,) = response.json()["keys"]
    assert set(jwk) == {"kty", "n", "e", "kid", "alg", "use", "key_ops"}
    assert jwk["key_ops"] == ["verify"]
    assert (jwk["kty"], jwk["alg"], jwk["use"]) == ("RSA", "RS256", "sig")
    assert jwk["kid"] == keys.key_ring().current_kid
    # development: the same document is on disk for the other services
    assert json.loads((fresh_keys / "jwks.json").read_text()) == response.json()
    assert oct((fresh_keys / f"{jwk['kid']}.pem").stat().st_mode & 0o777) == "0o600"


def test_key_rotation_keeps_old_tokens_valid_until_they_expire(api_client, login, fresh_keys):
    UserFactory(email="cleo@example.com")
    before = login("cleo@example.com")
    old_kid = _kid(before["access"])
    # another service's verifier that learnt the keys before the rotation, fetching this JWKS
    remote_verifier = platform_keys.KeySet(loader=lambda: api_client.get(JWKS).json(), min_refresh_seconds=0)
    assert verify_access_token(before["access"], keyset=remote_verifier).id

    call_command("rotate_signing_key", stdout=io.StringIO())

    after = login("cleo@example.com")
    new_kid = _kid(after["access"])
    assert new_kid != old_kid
    assert [k["kid"] for k in api_client.get(JWKS).json()["keys"]] == [old_kid, new_kid]
    # the other service meets the new kid, fetches the JWKS once more, and accepts both
    assert verify_access_token(after["access"], keyset=remote_verifier).id
    assert verify_access_token(before["access"], keyset=remote_verifier).id
    # this service's own verifier too
    assert verify_access_token(before["access"]).id
    # a refresh token signed by the previous key still works and comes back signed by the new key
    refreshed = api_client.post("/api/v1/auth/token/refresh", {"refresh": before["refresh"]}, format="json")
    assert refreshed.status_code == 200
    assert _kid(refreshed.json()["access"]) == new_kid

    # a second rotation retires the first key from the JWKS: its tokens are refused
    call_command("rotate_signing_key", "--keep", "2", stdout=io.StringIO())
    published = [k["kid"] for k in api_client.get(JWKS).json()["keys"]]
    assert old_kid not in published
    assert len(published) == 2
    fresh_verifier = platform_keys.KeySet(loader=lambda: api_client.get(JWKS).json(), min_refresh_seconds=0)
    with pytest.raises(InvalidToken, match="unknown key"):
        verify_access_token(before["access"], keyset=fresh_verifier)
    assert sorted(p.stem for p in fresh_keys.glob("*.pem")) == sorted(published)


def test_a_staged_key_is_published_before_it_signs(settings, api_client, login, fresh_keys):
    UserFactory(email="dora@example.com")
    current = keys.key_ring().current_kid
    settings.JWT_CURRENT_KID = current  # pin signing to the current key
    staged = keys.key_directory().add_key(keep=3)

    token = login("dora@example.com")["access"]

    assert _kid(token) == current
    assert [k["kid"] for k in api_client.get(JWKS).json()["keys"]] == [current, staged]


def test_rotation_refuses_to_keep_fewer_than_two_keys(fresh_keys):
    from django.core.management.base import CommandError

    keys.key_ring()
    with pytest.raises(CommandError, match="at least 2"):
        call_command("rotate_signing_key", "--keep", "1")


def test_keys_from_the_environment(settings):
    first, second = keys.generate_private_key(), keys.generate_private_key()
    raw = json.dumps(
        {
            "20260101T000000Z-aaaa": keys.private_key_pem(first).decode(),
            "20260201T000000Z-bbbb": keys.private_key_pem(second).decode(),
        }
    )

    ring = keys.ring_from_env(raw, None)
    pinned = keys.ring_from_env(raw, "20260101T000000Z-aaaa")

    assert ring.current_kid == "20260201T000000Z-bbbb"
    assert ring.published_kids() == ["20260101T000000Z-aaaa", "20260201T000000Z-bbbb"]
    assert pinned.current_kid == "20260101T000000Z-aaaa"
    with pytest.raises(ImproperlyConfigured, match="JSON object"):
        keys.ring_from_env("not json", None)
    with pytest.raises(ImproperlyConfigured, match="not a safe kid"):
        keys.ring_from_env(json.dumps({"../etc/passwd": keys.private_key_pem(first).decode()}), None)
    with pytest.raises(ImproperlyConfigured, match="not among"):
        keys.ring_from_env(raw, "missing")


def test_a_key_directory_without_keys_is_refused_outside_development(tmp_path):
    (tmp_path / "empty").mkdir()
    directory = keys.KeyDirectory(tmp_path / "empty", pinned=None, generate_if_empty=False)

    with pytest.raises(ImproperlyConfigured, match="holds no"):
        directory.ring()


def test_production_refuses_to_start_without_signing_keys(tmp_path):
    environment = {
        key: value
        for key, value in os.environ.items()
        if not key.startswith("JWT_") and key not in {"DEBUG", "DJANGO_SETTINGS_MODULE"}
    }
    environment.update(
        DEBUG="0",
        SECRET_KEY="a-real-secret-for-this-test-only",
        SERVICE_CREDENTIALS="orders:s",
        DJANGO_SETTINGS_MODULE="auth_service.config.settings",
        BAZAAR_VAR_DIR=str(tmp_path),
    )

    result = subprocess.run(
        [sys.executable, "-c", "import django; django.setup()"],
        env=environment,
        capture_output=True,
        text=True,
        timeout=60,
        cwd=REPO,
    )

    assert result.returncode != 0
    assert "JWT_SIGNING_KEYS or JWT_SIGNING_KEYS_DIR is not set" in result.stderr


def test_rotate_print_gives_a_key_for_the_environment_and_writes_nothing(fresh_keys):
    keys.key_ring()
    before = sorted(fresh_keys.glob("*.pem"))
    out = io.StringIO()

    call_command("rotate_signing_key", "--print", stdout=out)

    kid_line, pem = out.getvalue().split("\n", 1)
    kid = kid_line.removeprefix("kid: ")
    ring = keys.ring_from_env(json.dumps({kid: pem}), None)
    assert ring.current_kid == kid
    assert sorted(fresh_keys.glob("*.pem")) == before


def test_the_jwks_is_read_only(api_client):
    assert api_client.post(JWKS, {}, format="json").status_code == 405
