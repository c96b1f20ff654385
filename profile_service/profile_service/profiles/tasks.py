"""Message consumers of the profile service (thin: parse the payload, call a service)."""

from __future__ import annotations

import uuid

from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer
from profile_service.profiles.services import profile_create_for_registration


@consumer(contracts.UserRegistered)
def user_registered(message: contracts.UserRegistered) -> None:
    """A user signed up: give them a profile (once; never for a user who was erased)."""
    profile_create_for_registration(user_id=uuid.UUID(message.user_id))
