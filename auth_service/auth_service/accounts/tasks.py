"""Messages the auth service consumes (idempotent by message id, via the outbox consumer)."""

from __future__ import annotations

from typing import Any

from celery import shared_task

from auth_service.accounts import services
from bazaar_common import contracts
from bazaar_common.outbox.consumers import consumer


@consumer("auth.user_erased")
def user_erased(payload: dict[str, Any]) -> None:
    """The profile service erased the user's data; forget the account's identity too."""
    message = contracts.UserErased(**payload)
    services.user_erase(user_id=message.user_id)


@consumer(services.PASSWORD_RESET_MAIL.task)
def password_reset_mail_send(payload: dict[str, Any]) -> None:
    services.password_reset_mail_send(user_id=payload["user_id"])


@shared_task(name="auth.flush_expired_tokens")
def flush_expired_tokens() -> int:
    """Periodic (beat): expired refresh tokens need no blacklist entry any more."""
    return services.refresh_tokens_flush_expired()
