"""Messages the auth service consumes (idempotent by message id, via the outbox consumer)."""

from __future__ import annotations

import redis
from celery import shared_task

from auth_service.accounts import services
from bazaar_common import contracts
from bazaar_common.outbox.consumers import TRANSIENT_ERRORS, consumer


@consumer(contracts.UserErased, queue=contracts.QUEUE_AUTH)
def user_erased(message: contracts.UserErased) -> None:
    """The profile service erased the user's data; forget the account's identity too."""
    services.user_erase(user_id=message.user_id)


@consumer(contracts.PasswordResetMail)
def password_reset_mail_send(message: contracts.PasswordResetMail) -> None:
    services.password_reset_mail_send(user_id=message.user_id)


@consumer(contracts.SessionsRevoked, autoretry_for=(*TRANSIENT_ERRORS, redis.RedisError))
def sessions_revoked(message: contracts.SessionsRevoked) -> None:
    """The durable path of a revocation: written again by the worker, retried while Redis is away."""
    services.access_tokens_revoked_record(message=message)


@shared_task(name="auth.flush_expired_tokens")
def flush_expired_tokens() -> int:
    """Periodic (beat): expired refresh tokens need no blacklist entry any more."""
    return services.refresh_tokens_flush_expired()
