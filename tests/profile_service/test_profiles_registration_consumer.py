"""The ``profiles.user_registered`` consumer: a profile per registration, once."""

from __future__ import annotations

import uuid

import pytest

from bazaar_common import contracts
from bazaar_common.outbox.models import ProcessedMessage
from profile_service.profiles.models import ErasedUser, Profile
from profile_service.profiles.tasks import user_registered

pytestmark = pytest.mark.django_db


def _deliver(user_id: str, message_id: str | None = None) -> bool:
    payload = {"user_id": user_id, "email": "jane@example.com"}
    return user_registered(message_id=message_id or str(uuid.uuid4()), payload=payload)


def test_task_is_registered_under_the_contract_name():
    assert user_registered.name == "profiles.user_registered"
    assert [(r.task, r.queue) for r in contracts.UserRegistered.ROUTES] == [("profiles.user_registered", "profiles")]


def test_registration_creates_a_profile():
    user_id = str(uuid.uuid4())

    assert _deliver(user_id) is True

    profile = Profile.objects.get(user_id=user_id)
    assert (profile.display_name, profile.language, profile.notification_channels) == ("", "en", ["email"])


def test_redelivered_message_creates_nothing_twice():
    user_id, message_id = str(uuid.uuid4()), str(uuid.uuid4())

    assert _deliver(user_id, message_id) is True
    assert _deliver(user_id, message_id) is False

    assert Profile.objects.filter(user_id=user_id).count() == 1
    assert ProcessedMessage.objects.filter(message_id=message_id).count() == 1


def test_a_duplicate_message_with_a_new_id_still_creates_one_profile():
    user_id = str(uuid.uuid4())

    _deliver(user_id)
    _deliver(user_id)

    assert Profile.objects.filter(user_id=user_id).count() == 1


def test_message_after_on_demand_creation_keeps_the_existing_profile(customer, user_id):
    customer.patch("/api/v1/profiles/me", {"display_name": "Jane"}, format="json")

    _deliver(user_id)

    assert list(Profile.objects.filter(user_id=user_id).values_list("display_name", flat=True)) == ["Jane"]


def test_late_registration_of_an_erased_user_does_not_resurrect_the_profile():
    user_id = str(uuid.uuid4())
    ErasedUser.objects.create(user_id=user_id)

    assert _deliver(user_id) is True  # handled (and recorded), but nothing created

    assert not Profile.objects.filter(user_id=user_id).exists()


def test_a_malformed_payload_fails_and_is_not_recorded_as_processed():
    message_id = str(uuid.uuid4())

    with pytest.raises(ValueError):
        user_registered(message_id=message_id, payload={"user_id": "not-a-uuid", "email": "x@example.com"})

    assert not ProcessedMessage.objects.filter(message_id=message_id).exists()
    assert Profile.objects.count() == 0
