"""Test helpers: a throw-away signing key whose JWKS the verifier trusts, and token minting.

Only for tests; production keys come from the auth service.
"""

from __future__ import annotations

import json
import os
import tempfile
import time
import uuid
from functools import lru_cache
from typing import Any

import jwt
from cryptography.hazmat.primitives.asymmetric import rsa
from jwt.algorithms import RSAAlgorithm

from bazaar_common.auth import keys, tokens

TEST_KID = "test-key-1"


@lru_cache(maxsize=1)
def test_private_key() -> rsa.RSAPrivateKey:
    return rsa.generate_private_key(public_exponent=65537, key_size=2048)


def install_test_jwks(extra_private_keys: dict[str, rsa.RSAPrivateKey] | None = None) -> str:
    """Write a JWKS with the test key(s) and point the verifier at it; returns the file path."""
    private_keys = {TEST_KID: test_private_key(), **(extra_private_keys or {})}
    jwks: dict[str, list[dict[str, Any]]] = {"keys": []}
    for kid, private_key in private_keys.items():
        jwk = json.loads(RSAAlgorithm.to_jwk(private_key.public_key()))
        jwk.update({"kid": kid, "alg": "RS256", "use": "sig"})
        jwks["keys"].append(jwk)
    handle, path = tempfile.mkstemp(prefix="bazaar-test-jwks-", suffix=".json")
    with os.fdopen(handle, "w") as file:
        json.dump(jwks, file)
    os.environ["JWT_JWKS_FILE"] = path
    keys.default_keyset.reset()
    return path


def make_token(
    sub: str | None = None,
    roles: list[str] | tuple[str, ...] = ("customer",),
    *,
    private_key: rsa.RSAPrivateKey | None = None,
    kid: str = TEST_KID,
    lifetime: int = 300,
    **claims: Any,
) -> str:
    now = int(time.time())
    payload = {
        "sub": sub or str(uuid.uuid4()),
        "roles": list(roles),
        "iss": tokens.issuer(),
        "aud": tokens.audience(),
        "iat": now,
        "exp": now + lifetime,
        "jti": uuid.uuid4().hex,
        "token_type": "access",
        **claims,
    }
    payload = {key: value for key, value in payload.items() if value is not None}
    return jwt.encode(payload, private_key or test_private_key(), algorithm="RS256", headers={"kid": kid})


def bearer(token: str) -> dict[str, str]:
    return {"HTTP_AUTHORIZATION": f"Bearer {token}"}
