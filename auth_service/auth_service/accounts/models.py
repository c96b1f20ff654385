"""Bazaar accounts: one user per email, identified everywhere by a UUID, with platform roles."""

from __future__ import annotations

import unicodedata
import uuid
from typing import ClassVar

from django.contrib.auth.models import AbstractBaseUser, BaseUserManager, PermissionsMixin
from django.db import models
from django.db.models.functions import Lower
from django.utils import timezone

from bazaar_common.auth.tokens import (
    ROLE_ADMIN,
    ROLE_CUSTOMER,
    ROLE_MERCHANT,
    ROLE_SUPPORT,
    STAFF_ROLES,
    USER_ROLES,
)

ROLE_CHOICES = [(role, role) for role in USER_ROLES]


def email_normalize(email: str) -> str:
    """One spelling per mailbox: Unicode NFKC, surrounding blanks dropped, lower case."""
    return unicodedata.normalize("NFKC", email or "").strip().lower()


class UserManager(BaseUserManager["User"]):
    use_in_migrations = True

    def get_by_natural_key(self, username: str | None) -> User:
        return self.get(email=email_normalize(username or ""))

    def create_user(self, email: str, password: str | None = None, **fields: object) -> User:
        """Low-level creation (migrations, shell); the API goes through ``services.user_register``."""
        user = self.model(email=email_normalize(email), **fields)
        user.set_password(password)
        user.save(using=self._db)
        return user

    def create_superuser(self, email: str, password: str | None = None, **fields: object) -> User:
        fields.setdefault("roles", [ROLE_ADMIN, ROLE_CUSTOMER])
        fields.setdefault("is_staff", True)
        fields.setdefault("is_superuser", True)
        return self.create_user(email, password, **fields)


class User(AbstractBaseUser, PermissionsMixin):
    """A Bazaar account.

    ``roles`` is the source of truth for authorisation across the platform (it goes into every
    access token). ``is_staff``/``is_superuser`` only serve this service's Django admin and are
    derived from the roles by the services that change them.
    """

    id = models.UUIDField(primary_key=True, default=uuid.uuid4, editable=False)
    email = models.EmailField("email address", max_length=254, unique=True)
    roles = models.JSONField(default=list, blank=True)
    is_active = models.BooleanField(default=True)
    is_staff = models.BooleanField(default=False)
    date_joined = models.DateTimeField(default=timezone.now)
    deactivated_at = models.DateTimeField(null=True, blank=True)

    objects = UserManager()

    USERNAME_FIELD = "email"
    EMAIL_FIELD = "email"
    REQUIRED_FIELDS: ClassVar[list[str]] = []

    class Meta:
        ordering = ["date_joined"]
        constraints = [
            # The normalisation already lower-cases; this keeps the rule true for any writer.
            models.UniqueConstraint(Lower("email"), name="accounts_user_email_ci_unique"),
        ]

    def __str__(self) -> str:
        return self.email

    @property
    def role_list(self) -> list[str]:
        """Roles in a stable order (the order of ``USER_ROLES``)."""
        held = set(self.roles or [])
        return [role for role in USER_ROLES if role in held]

    def has_role(self, role: str) -> bool:
        return role in (self.roles or [])

    @property
    def holds_staff_role(self) -> bool:
        return bool(set(self.roles or []) & STAFF_ROLES)


__all__ = [
    "ROLE_ADMIN",
    "ROLE_CHOICES",
    "ROLE_CUSTOMER",
    "ROLE_MERCHANT",
    "ROLE_SUPPORT",
    "User",
    "UserManager",
    "email_normalize",
]


class SpentRefreshToken(models.Model):
    """A refresh token used up by rotation or logout (its blacklisting is SimpleJWT's row).

    Presenting a spent token again means it was copied: the whole family of the user is revoked.
    Tokens revoked in bulk (password change, deactivation) are blacklisted without being "spent",
    so an old device presenting one is simply refused and does not end the new session.
    """

    REASON_ROTATED = "rotated"
    REASON_LOGGED_OUT = "logged_out"

    token = models.OneToOneField("token_blacklist.OutstandingToken", on_delete=models.CASCADE, related_name="spend")
    reason = models.CharField(max_length=16, choices=[(REASON_ROTATED, "rotated"), (REASON_LOGGED_OUT, "logged out")])
    spent_at = models.DateTimeField(default=timezone.now)

    def __str__(self) -> str:
        return f"{self.token_id} {self.reason}"
