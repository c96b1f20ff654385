"""Input fields and the strict serializer base used by the profile APIs.

Every bad value is a 400 naming the field and the reason; so is a field the API does not know, or
one a client may read but never set. Nothing is silently ignored.
"""

from __future__ import annotations

import datetime
from typing import Any

import phonenumbers
from django.utils import timezone
from rest_framework import serializers

from bazaar_common.drf import READ_ONLY_FIELD, UNKNOWN_FIELD, StrictSerializer
from profile_service.profiles import reference

# One strict serializer for every service (unknown and read-only fields named in the 400).
__all__ = ["READ_ONLY_FIELD", "UNKNOWN_FIELD", "StrictSerializer"]


def normalise_phone(raw: str) -> str:
    """``raw`` in E.164, or ValueError. International format only: we cannot guess a country."""
    try:
        number = phonenumbers.parse(raw, None)
    except phonenumbers.NumberParseException as exc:
        raise ValueError(str(exc)) from exc
    if not phonenumbers.is_valid_number(number):
        raise ValueError("not a valid number")
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


class PhoneNumberField(serializers.CharField):
    """A phone number in international format, stored in E.164; blank clears it."""

    default_error_messages = {
        "invalid_phone": (
            "Enter a valid phone number in international format, starting with + and the "
            "country code (e.g. +4930901820)."
        ),
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_blank", True)
        kwargs.setdefault("max_length", 32)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data)
        if value == "":
            return ""
        try:
            return normalise_phone(value)
        except ValueError:
            self.fail("invalid_phone")
        raise AssertionError("unreachable")  # self.fail always raises


class BirthDateField(serializers.DateField):
    """A date of birth: not in the future, not before ``MIN_BIRTH_YEAR``; null clears it."""

    default_error_messages = {
        "future": "The date of birth cannot be in the future.",
        "too_old": f"The date of birth cannot be before {reference.MIN_BIRTH_YEAR}-01-01.",
    }

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("allow_null", True)
        super().__init__(**kwargs)

    def to_internal_value(self, value: Any) -> datetime.date:
        parsed = super().to_internal_value(value)
        if parsed > timezone.localdate():
            self.fail("future")
        if parsed < datetime.date(reference.MIN_BIRTH_YEAR, 1, 1):
            self.fail("too_old")
        return parsed


class CountryField(serializers.CharField):
    """An ISO 3166-1 alpha-2 country code; lower case is accepted and upper-cased."""

    default_error_messages = {"invalid_country": '"{value}" is not an ISO 3166-1 alpha-2 country code.'}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault("max_length", 2)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> str:
        value = super().to_internal_value(data).upper()
        if value not in reference.COUNTRIES:
            self.fail("invalid_country", value=value)
        return value


def language_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=list(reference.LANGUAGES.items()),
        error_messages={"invalid_choice": '"{input}" is not a supported language.'},
        **kwargs,
    )


def currency_field(**kwargs: Any) -> serializers.ChoiceField:
    return serializers.ChoiceField(
        choices=sorted(reference.CURRENCIES),
        error_messages={"invalid_choice": '"{input}" is not an ISO 4217 currency code.'},
        **kwargs,
    )


class NotificationChannelsField(serializers.ListField):
    """A subset of the notification channels, each at most once."""

    default_error_messages = {"duplicate": "Each channel may appear only once."}

    def __init__(self, **kwargs: Any) -> None:
        kwargs.setdefault(
            "child",
            serializers.ChoiceField(
                choices=reference.NOTIFICATION_CHANNELS,
                error_messages={"invalid_choice": '"{input}" is not a notification channel (email, sms, push).'},
            ),
        )
        kwargs.setdefault("allow_empty", True)
        super().__init__(**kwargs)

    def to_internal_value(self, data: Any) -> list[str]:
        channels = super().to_internal_value(data)
        if len(set(channels)) != len(channels):
            self.fail("duplicate")
        # A stable order, so equal sets compare equal and read the same everywhere.
        return [channel for channel in reference.NOTIFICATION_CHANNELS if channel in channels]
