"""The platform verifier (``verify_access_token``) against the classic JWT attacks."""

import base64
import hashlib
import hmac
import json
import time

import jwt
import pytest
from cryptography.hazmat.primitives import serialization
from cryptography.hazmat.primitives.asymmetric import rsa
from django.test import RequestFactory
from jwt.algorithms import RSAAlgorithm
from rest_framework import exceptions

from bazaar_common.auth import testing
from bazaar_common.auth.authentication import JWTAuthentication
from bazaar_common.auth.keys import KeySet
from bazaar_common.auth.tokens import InvalidToken, verify_access_token

USER_ID = "9b2f0a52-5d3e-4a41-9d8e-1c0a3f6b7e21"


def b64(data: bytes) -> str:
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def claims(**overrides):
    now = int(time.time())
    base = {
        "sub": USER_ID,
        "roles": ["customer"],
        "iss": "bazaar-auth",
        "aud": "bazaar",
        "iat": now,
        "exp": now + 300,
        "jti": "a1b2c3",
        "token_type": "access",
    }
    base.update(overrides)
    return {key: value for key, value in base.items() if value is not None}


def unsigned(header: dict, payload: dict, signature: bytes = b"") -> str:
    return ".".join([b64(json.dumps(header).encode()), b64(json.dumps(payload).encode()), b64(signature)])


def rs256(header: dict, payload: dict, key=None) -> str:
    """Sign anything, bypassing PyJWT's own checks on what it is asked to encode."""
    from cryptography.hazmat.primitives import hashes
    from cryptography.hazmat.primitives.asymmetric import padding

    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(payload).encode())}"
    signature = (key or testing.test_private_key()).sign(signing_input.encode(), padding.PKCS1v15(), hashes.SHA256())
    return f"{signing_input}.{b64(signature)}"


def rejects(token: str, reason: str) -> None:
    with pytest.raises(InvalidToken, match=reason):
        verify_access_token(token)


def test_a_valid_token_gives_the_principal():
    principal = verify_access_token(testing.make_token(USER_ID, ("customer", "merchant")))

    assert principal.id == USER_ID
    assert principal.roles == frozenset({"customer", "merchant"})
    assert principal.is_service is False


def test_alg_none_is_refused():
    rejects(unsigned({"alg": "none", "typ": "JWT", "kid": testing.TEST_KID}, claims()), "algorithm not allowed")
    rejects(unsigned({"alg": "None", "kid": testing.TEST_KID}, claims()), "algorithm not allowed")


def test_hs256_signed_with_the_public_key_is_refused():
    """Key confusion: the attacker uses the published RSA public key as an HMAC secret."""
    public_pem = (
        testing.test_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "HS256", "typ": "JWT", "kid": testing.TEST_KID}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims(roles=['admin'])).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    rejects(f"{signing_input}.{b64(signature)}", "algorithm not allowed")


def test_an_rs256_header_over_an_hmac_signature_fails_verification():
    public_pem = (
        testing.test_private_key()
        .public_key()
        .public_bytes(serialization.Encoding.PEM, serialization.PublicFormat.SubjectPublicKeyInfo)
    )
    header = {"alg": "RS256", "kid": testing.TEST_KID}
    signing_input = f"{b64(json.dumps(header).encode())}.{b64(json.dumps(claims()).encode())}"
    signature = hmac.new(public_pem, signing_input.encode(), hashlib.sha256).digest()

    rejects(f"{signing_input}.{b64(signature)}", "Signature verification failed")


def test_expired_token_is_refused_beyond_the_leeway():
    rejects(testing.make_token(USER_ID, lifetime=-90), "expired")


def test_leeway_absorbs_small_clock_skew_but_never_more_than_a_minute(monkeypatch):
    assert verify_access_token(testing.make_token(USER_ID, lifetime=-10)).id == USER_ID
    monkeypatch.setenv("JWT_LEEWAY_SECONDS", "86400")
    rejects(testing.make_token(USER_ID, lifetime=-90), "expired")


def test_a_token_without_exp_is_refused():
    token = jwt.encode(
        claims(exp=None), testing.test_private_key(), algorithm="RS256", headers={"kid": testing.TEST_KID}
    )

    rejects(token, 'Token is missing the "exp" claim')


@pytest.mark.parametrize("missing", ["iss", "aud", "sub", "jti", "iat", "token_type"])
def test_every_required_claim_is_required(missing):
    token = jwt.encode(
        claims(**{missing: None}),
        testing.test_private_key(),
        algorithm="RS256",
        headers={"kid": testing.TEST_KID},
    )

    rejects(token, "invalid|malformed")


@pytest.mark.parametrize(
    "issuer",
    [
        "evil-issuer",
        "bazaar-au",  # a prefix of the real issuer
        "bazaar-auth.evil.example",  # the real issuer as a prefix
        "bazaar-auth ",
        "BAZAAR-AUTH",
    ],
)
def test_issuer_must_match_exactly(issuer):
    rejects(testing.make_token(USER_ID, iss=issuer), "Invalid issuer")


def test_issuer_as_a_list_is_refused():
    rejects(rs256({"alg": "RS256", "kid": testing.TEST_KID}, claims(iss=["bazaar-auth"])), "(?i)issuer")


@pytest.mark.parametrize("audience", ["other-platform", "bazaa", ["bazaar", "other-platform"], ["bazaar"]])
def test_audience_must_be_exactly_ours(audience):
    rejects(testing.make_token(USER_ID, aud=audience), "(?i)audience|claim format")


def test_a_refresh_token_is_not_an_access_token():
    rejects(testing.make_token(USER_ID, token_type="refresh"), "Not an access token")


@pytest.mark.parametrize(
    "kid",
    [
        "../../../../dev/null",
        "/etc/passwd",
        "key' OR '1'='1",
        "1; DROP TABLE keys--",
        "http://evil.example/jwks.json",
        "test-key-1\n",
        "",
        "k" * 65,
    ],
)
def test_a_kid_holding_a_path_sql_or_url_is_refused(kid):
    rejects(testing.make_token(USER_ID, kid=kid), "key id is missing or malformed")


def test_a_missing_or_non_string_kid_is_refused():
    token = jwt.encode(claims(), testing.test_private_key(), algorithm="RS256")
    rejects(token, "key id is missing or malformed")
    rejects(rs256({"alg": "RS256", "kid": 7}, claims()), "Malformed|key id is missing or malformed")


def test_a_tampered_payload_is_refused():
    header, _payload, signature = testing.make_token(USER_ID).split(".")
    forged_payload = b64(json.dumps(claims(roles=["admin"])).encode())

    rejects(f"{header}.{forged_payload}.{signature}", "Signature verification failed")


def test_an_unknown_kid_is_refused():
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)

    rejects(testing.make_token(USER_ID, private_key=rogue, kid="rogue-key"), "unknown key")


def test_a_known_kid_with_another_key_and_a_jku_header_is_refused():
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    token = jwt.encode(
        claims(roles=["admin"]),
        rogue,
        algorithm="RS256",
        headers={"kid": testing.TEST_KID, "jku": "http://evil.example/jwks.json"},
    )

    rejects(token, "Signature verification failed")


def test_an_unknown_critical_header_is_refused():
    token = jwt.encode(
        claims(),
        testing.test_private_key(),
        algorithm="RS256",
        headers={"kid": testing.TEST_KID, "crit": ["exp"]},
    )

    rejects(token, "Malformed|invalid")


def test_malformed_tokens_are_refused():
    for token in ["", "abc", "a.b", "a.b.c.d", "x" * 10000]:
        rejects(token, "Malformed")


# --- Key sets: rotation and refetch ------------------------------------------------------------


def jwks_of(**private_keys):
    keys = []
    for kid, key in private_keys.items():
        jwk = json.loads(RSAAlgorithm.to_jwk(key.public_key()))
        jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        keys.append(jwk)
    return {"keys": keys}


class Source:
    """A JWKS source whose document the test changes, counting the fetches."""

    def __init__(self, document):
        self.document = document
        self.fetches = 0

    def __call__(self):
        self.fetches += 1
        return self.document


def test_an_unknown_kid_triggers_one_refetch_and_a_rotated_key_is_then_accepted():
    old_key = testing.test_private_key()
    new_key = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    source = Source(jwks_of(old=old_key))
    keyset = KeySet(loader=source, min_refresh_seconds=0)
    old_token = testing.make_token(USER_ID, private_key=old_key, kid="old")
    assert verify_access_token(old_token, keyset=keyset).id == USER_ID
    assert source.fetches == 1

    # the auth service rotates: signs with "new", still publishes "old"
    source.document = jwks_of(old=old_key, new=new_key)
    new_token = testing.make_token(USER_ID, private_key=new_key, kid="new")

    assert verify_access_token(new_token, keyset=keyset).id == USER_ID
    assert source.fetches == 2
    # the old token stays valid until it expires, without another fetch
    assert verify_access_token(old_token, keyset=keyset).id == USER_ID
    assert source.fetches == 2


def test_unknown_kids_do_not_hammer_the_jwks_source():
    source = Source(jwks_of(known=testing.test_private_key()))
    keyset = KeySet(loader=source, min_refresh_seconds=60)
    rogue = rsa.generate_private_key(public_exponent=65537, key_size=2048)
    assert keyset.get("known") is not None

    for n in range(20):
        with pytest.raises(InvalidToken):
            verify_access_token(testing.make_token(USER_ID, private_key=rogue, kid=f"bogus-{n}"), keyset=keyset)

    assert source.fetches == 1


def test_a_key_withdrawn_from_the_jwks_stops_being_trusted_after_max_age():
    key = testing.test_private_key()
    source = Source(jwks_of(gone=key))
    keyset = KeySet(loader=source, min_refresh_seconds=0, max_age_seconds=0)
    token = testing.make_token(USER_ID, private_key=key, kid="gone")
    assert verify_access_token(token, keyset=keyset).id == USER_ID

    source.document = {"keys": []}

    with pytest.raises(InvalidToken, match="unknown key"):
        verify_access_token(token, keyset=keyset)


def test_the_known_keys_stay_in_use_while_the_source_is_down():
    key = testing.test_private_key()
    documents = [jwks_of(k=key)]

    def flaky():
        if not documents:
            raise ConnectionError("auth is down")
        return documents.pop()

    keyset = KeySet(loader=flaky, min_refresh_seconds=0, max_age_seconds=0)
    token = testing.make_token(USER_ID, private_key=key, kid="k")
    assert verify_access_token(token, keyset=keyset).id == USER_ID

    assert verify_access_token(token, keyset=keyset).id == USER_ID


def test_private_or_weak_or_foreign_keys_in_a_jwks_are_ignored():
    strong = testing.test_private_key()
    weak = rsa.generate_private_key(public_exponent=65537, key_size=1024)
    private_jwk = json.loads(RSAAlgorithm.to_jwk(strong))
    private_jwk.update({"kid": "private", "alg": "RS256"})
    document = jwks_of(weak=weak)
    document["keys"].append(private_jwk)
    document["keys"].append({"kty": "oct", "kid": "hmac", "k": b64(b"secret")})
    document["keys"].append({**jwks_of(es=strong)["keys"][0], "alg": "RS512"})
    keyset = KeySet(loader=lambda: document, min_refresh_seconds=0)

    assert [keyset.get(kid) for kid in ("weak", "private", "hmac", "es")] == [None, None, None, None]


# --- The DRF authentication class --------------------------------------------------------------


def test_identity_headers_without_a_token_authenticate_nobody():
    request = RequestFactory().get(
        "/", HTTP_X_USER_ID=USER_ID, HTTP_X_USER_ROLES="admin", HTTP_X_AUTHENTICATED_USER=USER_ID
    )

    assert JWTAuthentication().authenticate(request) is None


def test_identity_headers_never_override_the_token():
    token = testing.make_token(USER_ID, ("customer",))
    request = RequestFactory().get(
        "/", HTTP_AUTHORIZATION=f"Bearer {token}", HTTP_X_USER_ID="someone-else", HTTP_X_USER_ROLES="admin"
    )

    principal, _ = JWTAuthentication().authenticate(request)

    assert (principal.id, principal.roles) == (USER_ID, frozenset({"customer"}))


@pytest.mark.parametrize("header", ["Basic abc", "Bearer", "Bearer a b", "bearer " + "x.y.z", "Token x.y.z"])
def test_a_malformed_authorization_header_is_401(header):
    with pytest.raises(exceptions.AuthenticationFailed):
        JWTAuthentication().authenticate(RequestFactory().get("/", HTTP_AUTHORIZATION=header))


def test_a_local_source_is_re_read_at_once_on_an_unknown_kid():
    """The auth service's own verifier: its keys are in-process, so no refresh limit applies."""
    first, second = testing.test_private_key(), rsa.generate_private_key(public_exponent=65537, key_size=2048)
    source = Source(jwks_of(first=first))
    keyset = KeySet(loader=source, min_refresh_seconds=3600, source_is_local=lambda: True)
    assert keyset.get("first") is not None

    source.document = jwks_of(first=first, second=second)

    assert keyset.get("second") is not None
    assert source.fetches == 2


@pytest.mark.parametrize("claim", ["exp", "iat"])
def test_a_signed_token_with_a_numeric_string_time_claim_is_refused(claim):
    # PyJWT itself accepts "9999999999" (it calls int() on it); every caller then compares numbers.
    token = testing.make_token(USER_ID, **{claim: str(int(time.time()) + (3600 if claim == "exp" else 0))})
    rejects(token, f"'{claim}' must be a number")
