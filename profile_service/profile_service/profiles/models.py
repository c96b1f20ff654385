"""Profiles, their addresses, and the record of erased users."""

from __future__ import annotations

from django.db import models
from django.db.models import Q

from profile_service.profiles import reference


def default_notification_channels() -> list[str]:
    return list(reference.DEFAULT_NOTIFICATION_CHANNELS)


class Profile(models.Model):
    """What a Bazaar user tells the platform about themselves beyond their login (auth owns that)."""

    user_id = models.UUIDField(unique=True, editable=False)
    display_name = models.CharField(max_length=100, blank=True, default="")
    # E.164 ("+4915112345678"), or empty when the user gave none.
    phone = models.CharField(max_length=16, blank=True, default="")
    date_of_birth = models.DateField(null=True, blank=True)
    language = models.CharField(
        max_length=8, choices=list(reference.LANGUAGES.items()), default=reference.DEFAULT_LANGUAGE
    )
    currency = models.CharField(max_length=3, default=reference.DEFAULT_CURRENCY)
    marketing_consent = models.BooleanField(default=False)
    # When consent was last given or withdrawn; null while the user never decided.
    marketing_consent_changed_at = models.DateTimeField(null=True, blank=True)
    notification_channels = models.JSONField(default=default_notification_channels, blank=True)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]

    def __str__(self) -> str:
        return self.display_name or str(self.user_id)


class Address(models.Model):
    profile = models.ForeignKey(Profile, on_delete=models.CASCADE, related_name="addresses")
    label = models.CharField(max_length=50, blank=True, default="")
    full_name = models.CharField(max_length=150)
    line1 = models.CharField(max_length=200)
    line2 = models.CharField(max_length=200, blank=True, default="")
    city = models.CharField(max_length=100)
    postal_code = models.CharField(max_length=20, blank=True, default="")
    region = models.CharField(max_length=100, blank=True, default="")
    country = models.CharField(max_length=2)  # ISO 3166-1 alpha-2
    phone = models.CharField(max_length=16, blank=True, default="")
    is_default_shipping = models.BooleanField(default=False)
    is_default_billing = models.BooleanField(default=False)
    created_at = models.DateTimeField(auto_now_add=True)
    updated_at = models.DateTimeField(auto_now=True)

    class Meta:
        ordering = ["id"]
        verbose_name_plural = "addresses"
        constraints = [
            # The database itself guarantees one default of each kind per profile; the service
            # unsets the old default first, in the same transaction.
            models.UniqueConstraint(
                fields=["profile"],
                condition=Q(is_default_shipping=True),
                name="address_one_default_shipping",
            ),
            models.UniqueConstraint(
                fields=["profile"],
                condition=Q(is_default_billing=True),
                name="address_one_default_billing",
            ),
        ]

    def __str__(self) -> str:
        return f"{self.full_name}, {self.line1}, {self.city} ({self.country})"


class ErasedUser(models.Model):
    """A user who asked to be erased: keeps the erasure idempotent and stops resurrection.

    Holds nothing personal beyond the opaque user id.
    """

    user_id = models.UUIDField(primary_key=True, editable=False)
    erased_at = models.DateTimeField(auto_now_add=True)

    def __str__(self) -> str:
        return f"erased {self.user_id}"
