"""Argon2id parameters: at least OWASP's minimum, and older hashes upgraded at sign-in."""

from __future__ import annotations

import pytest
from auth_factories import PASSWORD, UserFactory  # noqa: I001 - this suite's factories module
from django.contrib.auth.hashers import PBKDF2PasswordHasher, make_password

from auth_service.accounts import hashers
from auth_service.accounts.hashers import BazaarArgon2PasswordHasher
from auth_service.accounts.models import User

pytestmark = pytest.mark.django_db


def _parameters(encoded: str) -> str:
    # argon2$argon2id$v=19$m=...,t=...,p=...$salt$hash
    return encoded.split("$")[3]


def test_production_parameters_are_at_least_owasps_argon2id_minimum():
    assert hashers.MEMORY_KIB >= 19 * 1024
    assert hashers.TIME_COST >= 2
    assert hashers.PARALLELISM == 1


def test_new_hashes_are_argon2id_with_the_configured_parameters():
    encoded = make_password("correct-horse-battery")

    assert encoded.startswith("argon2$argon2id$")
    hasher = BazaarArgon2PasswordHasher
    assert _parameters(encoded) == f"m={hasher.memory_cost},t={hasher.time_cost},p={hasher.parallelism}"


def test_a_hash_with_older_parameters_is_rehashed_at_the_next_sign_in(login, monkeypatch):
    user = UserFactory(email="olga@example.com")
    old = User.objects.get(pk=user.pk).password
    monkeypatch.setattr(BazaarArgon2PasswordHasher, "memory_cost", 512)
    monkeypatch.setattr(BazaarArgon2PasswordHasher, "time_cost", 2)

    login("olga@example.com", PASSWORD)

    upgraded = User.objects.get(pk=user.pk).password
    assert _parameters(old) != _parameters(upgraded)
    assert _parameters(upgraded) == "m=512,t=2,p=1"


def test_a_pbkdf2_hash_is_upgraded_to_argon2id_at_sign_in(login):
    user = UserFactory(email="pia@example.com")
    User.objects.filter(pk=user.pk).update(password=PBKDF2PasswordHasher().encode(PASSWORD, "somesalt1234"))

    login("pia@example.com", PASSWORD)

    assert User.objects.get(pk=user.pk).password.startswith("argon2$argon2id$")
