"""GET/PATCH /api/v1/profiles/me: on-demand creation, preferences, validation."""

from __future__ import annotations

import datetime
import uuid

import pytest
from django.utils import timezone

from profile_service.profiles.models import Profile

ME = "/api/v1/profiles/me"
pytestmark = pytest.mark.django_db


def test_get_me_creates_the_profile_on_demand(customer, user_id):
    response = customer.get(ME)

    assert response.status_code == 200
    body = response.json()
    profile = Profile.objects.get(user_id=user_id)
    assert body == {
        "user_id": user_id,
        "display_name": "",
        "phone": "",
        "date_of_birth": None,
        "preferences": {
            "language": "en",
            "currency": "EUR",
            "marketing_consent": False,
            "marketing_consent_changed_at": None,
            "notification_channels": ["email"],
        },
        "created_at": profile.created_at.isoformat().replace("+00:00", "Z"),
        "updated_at": profile.updated_at.isoformat().replace("+00:00", "Z"),
    }


def test_get_me_twice_creates_one_profile(customer, user_id):
    assert customer.get(ME).status_code == 200
    assert customer.get(ME).status_code == 200

    assert Profile.objects.filter(user_id=user_id).count() == 1


def test_get_me_needs_a_token(api_client):
    response = api_client.get(ME)

    assert response.status_code == 401
    assert response.json()["status"] == 401


def test_service_tokens_cannot_use_the_public_api(client_as):
    response = client_as("service:orders", ("service",)).get(ME)

    assert response.status_code == 403
    assert Profile.objects.count() == 0


def test_patch_me_updates_profile_and_preferences(customer, user_id):
    response = customer.patch(
        ME,
        {
            "display_name": "Jane",
            "phone": "+49 30 901820",
            "date_of_birth": "1990-04-01",
            "preferences": {
                "language": "de",
                "currency": "CHF",
                "notification_channels": ["push", "sms"],
            },
        },
        format="json",
    )

    assert response.status_code == 200
    body = response.json()
    assert body["display_name"] == "Jane"
    assert body["phone"] == "+4930901820"
    assert body["date_of_birth"] == "1990-04-01"
    assert body["preferences"] == {
        "language": "de",
        "currency": "CHF",
        "marketing_consent": False,
        "marketing_consent_changed_at": None,
        "notification_channels": ["sms", "push"],
    }
    profile = Profile.objects.get(user_id=user_id)
    assert (profile.phone, profile.language, profile.currency) == ("+4930901820", "de", "CHF")
    assert profile.date_of_birth == datetime.date(1990, 4, 1)


def test_marketing_consent_records_when_it_was_given_and_withdrawn(customer, user_id):
    before = timezone.now()
    given = customer.patch(ME, {"preferences": {"marketing_consent": True}}, format="json")
    given_at = Profile.objects.get(user_id=user_id).marketing_consent_changed_at

    assert given.status_code == 200
    assert given.json()["preferences"]["marketing_consent"] is True
    assert given_at is not None
    assert given_at >= before
    assert given.json()["preferences"]["marketing_consent_changed_at"] == given_at.isoformat().replace("+00:00", "Z")

    # Saying yes again is not a new decision: the time stays.
    again = customer.patch(ME, {"preferences": {"marketing_consent": True}}, format="json")
    assert again.status_code == 200
    assert Profile.objects.get(user_id=user_id).marketing_consent_changed_at == given_at

    withdrawn = customer.patch(ME, {"preferences": {"marketing_consent": False}}, format="json")
    withdrawn_at = Profile.objects.get(user_id=user_id).marketing_consent_changed_at
    assert withdrawn.status_code == 200
    assert withdrawn.json()["preferences"]["marketing_consent"] is False
    assert withdrawn_at > given_at


def test_clearing_phone_and_date_of_birth(customer, user_id):
    customer.patch(ME, {"phone": "+4930901820", "date_of_birth": "1990-04-01"}, format="json")

    response = customer.patch(ME, {"phone": "", "date_of_birth": None}, format="json")

    assert response.status_code == 200
    assert (response.json()["phone"], response.json()["date_of_birth"]) == ("", None)


def _errors(response) -> list[dict[str, str]]:
    assert response.status_code == 400, response.content
    body = response.json()
    assert body["status"] == 400
    assert body["title"] == "Invalid request"
    return body["errors"]


@pytest.mark.parametrize(
    ("payload", "errors"),
    [
        (
            {"nickname": "x"},
            [{"field": "nickname", "reason": "Unknown field."}],
        ),
        (
            {"preferences": {"theme": "dark"}},
            [{"field": "preferences.theme", "reason": "Unknown field."}],
        ),
        (
            {"user_id": str(uuid.uuid4())},
            [{"field": "user_id", "reason": "This field is read-only."}],
        ),
        (
            {"preferences": {"marketing_consent_changed_at": "2020-01-01T00:00:00Z"}},
            [{"field": "preferences.marketing_consent_changed_at", "reason": "This field is read-only."}],
        ),
        (
            {"phone": "030 901820"},
            [
                {
                    "field": "phone",
                    "reason": "Enter a valid phone number in international format, starting with + "
                    "and the country code (e.g. +4930901820).",
                }
            ],
        ),
        (
            {"phone": "+49 123"},
            [
                {
                    "field": "phone",
                    "reason": "Enter a valid phone number in international format, starting with + "
                    "and the country code (e.g. +4930901820).",
                }
            ],
        ),
        (
            {"date_of_birth": "1899-12-31"},
            [{"field": "date_of_birth", "reason": "The date of birth cannot be before 1900-01-01."}],
        ),
        (
            {"date_of_birth": "not-a-date"},
            [
                {
                    "field": "date_of_birth",
                    "reason": "Date has wrong format. Use one of these formats instead: YYYY-MM-DD.",
                }
            ],
        ),
        (
            {"preferences": {"language": "xx"}},
            [{"field": "preferences.language", "reason": '"xx" is not a supported language.'}],
        ),
        (
            {"preferences": {"currency": "EURO"}},
            [{"field": "preferences.currency", "reason": '"EURO" is not an ISO 4217 currency code.'}],
        ),
        (
            {"preferences": {"notification_channels": ["email", "fax"]}},
            [
                {
                    "field": "preferences.notification_channels.1",
                    "reason": '"fax" is not a notification channel (email, sms, push).',
                }
            ],
        ),
        (
            {"preferences": {"notification_channels": ["email", "email"]}},
            [{"field": "preferences.notification_channels", "reason": "Each channel may appear only once."}],
        ),
        (
            {"preferences": {"notification_channels": ["sms"]}},
            [
                {
                    "field": "preferences.notification_channels",
                    "reason": "SMS notifications need a phone number.",
                }
            ],
        ),
        (
            {"preferences": {"marketing_consent": "perhaps"}},
            [{"field": "preferences.marketing_consent", "reason": "Must be a valid boolean."}],
        ),
        (
            {"display_name": "x" * 101},
            [{"field": "display_name", "reason": "Ensure this field has no more than 100 characters."}],
        ),
        (
            {"preferences": "de"},
            [
                {
                    "field": "preferences",
                    "reason": "Invalid data. Expected a dictionary, but got str.",
                }
            ],
        ),
    ],
)
def test_patch_me_rejects_bad_input_naming_field_and_reason(customer, user_id, payload, errors):
    customer.get(ME)

    response = customer.patch(ME, payload, format="json")

    assert _errors(response) == errors
    profile = Profile.objects.get(user_id=user_id)
    assert (profile.display_name, profile.phone, profile.language) == ("", "", "en")


def test_patch_me_reports_unknown_and_invalid_fields_together(customer):
    response = customer.patch(ME, {"colour": "red", "phone": "12"}, format="json")

    assert sorted(e["field"] for e in _errors(response)) == ["colour", "phone"]


def test_date_of_birth_in_the_future_is_refused(customer):
    tomorrow = timezone.localdate() + datetime.timedelta(days=1)

    response = customer.patch(ME, {"date_of_birth": tomorrow.isoformat()}, format="json")

    assert _errors(response) == [{"field": "date_of_birth", "reason": "The date of birth cannot be in the future."}]


def test_sms_channel_accepted_with_a_phone_and_phone_cannot_then_be_removed(customer):
    ok = customer.patch(ME, {"phone": "+4930901820", "preferences": {"notification_channels": ["sms"]}}, format="json")
    assert ok.status_code == 200
    assert ok.json()["preferences"]["notification_channels"] == ["sms"]

    response = customer.patch(ME, {"phone": ""}, format="json")

    assert _errors(response) == [
        {"field": "preferences.notification_channels", "reason": "SMS notifications need a phone number."}
    ]


def test_patch_me_with_a_body_that_is_not_an_object(customer):
    response = customer.patch(ME, ["display_name"], format="json")

    assert _errors(response) == [
        {"field": "non_field_errors", "reason": "Invalid data. Expected a dictionary, but got list."}
    ]
