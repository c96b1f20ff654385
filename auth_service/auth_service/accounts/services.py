"""Writes of the auth service: accounts, credentials, tokens, roles.

Every function is keyword-only and runs its writes inside ``transaction.atomic``. Failures that the
client must see raise domain errors (``bazaar_common.domain``), which the problem-details handler
turns into JSON; nothing here depends on DRF.
"""

from __future__ import annotations

import hmac
import logging
from dataclasses import dataclass
from typing import Any

import redis
from django.conf import settings
from django.contrib.auth import password_validation
from django.contrib.auth.hashers import make_password
from django.contrib.auth.tokens import default_token_generator
from django.core.exceptions import ValidationError as DjangoValidationError
from django.db import IntegrityError, transaction
from django.utils import timezone
from django.utils.encoding import force_bytes, force_str
from django.utils.http import urlsafe_base64_decode, urlsafe_base64_encode
from rest_framework_simplejwt.exceptions import TokenError
from rest_framework_simplejwt.token_blacklist.models import BlacklistedToken, OutstandingToken

from auth_service.accounts import abuse
from auth_service.accounts.models import ROLE_ADMIN, ROLE_CUSTOMER, SpentRefreshToken, User, email_normalize
from auth_service.accounts.tokens import BazaarRefreshToken, refresh_token_for, service_access_token
from bazaar_common import contracts
from bazaar_common.auth import revocation
from bazaar_common.auth.admin_backend import StaffIdentity
from bazaar_common.auth.tokens import USER_ROLES
from bazaar_common.domain import Conflict, CredentialsRefused, DomainError, Forbidden, InvalidInput
from bazaar_common.errors import ServiceUnavailable
from bazaar_common.outbox.services import outbox_enqueue

logger = logging.getLogger(__name__)

# Internal to this service: the reset mail is sent by its own worker, so that the answer to a reset
# request takes the same time whether or not the email has an account.

INVALID_CREDENTIALS = "No active account found with the given credentials."
INVALID_REFRESH = "The refresh token is invalid, expired or revoked."
# A hash to check wrong emails against, so that "no such account" costs as much as "wrong password".
_DUMMY_PASSWORD_HASH: str | None = None


@dataclass(frozen=True)
class TokenPair:
    access: str
    refresh: str


def _validation_error(field: str, messages: list[str] | str) -> InvalidInput:
    return InvalidInput({field: messages if isinstance(messages, list) else [messages]})


def _password_validate(*, password: str, user: User, field: str = "password") -> None:
    try:
        password_validation.validate_password(password, user=user)
    except DjangoValidationError as exc:
        raise _validation_error(field, list(exc.messages)) from exc


def _spend_hash_time(password: str) -> None:
    global _DUMMY_PASSWORD_HASH
    if _DUMMY_PASSWORD_HASH is None:
        _DUMMY_PASSWORD_HASH = make_password("bazaar-timing-equaliser")
    User(password=_DUMMY_PASSWORD_HASH).check_password(password)


def _sync_admin_flags(user: User) -> list[str]:
    """This service's own admin: staff roles may enter it, the admin role is superuser."""
    user.is_staff = user.holds_staff_role
    user.is_superuser = user.has_role(ROLE_ADMIN)
    return ["is_staff", "is_superuser"]


# --- Accounts ------------------------------------------------------------------------------------


def user_register(*, email: str, password: str, client_ip: str) -> User:
    """Create a customer account and announce it (``USER_REGISTERED``) in the same transaction."""
    abuse.AttemptLimiter(
        scope="register",
        per_account=0,
        per_address=settings.REGISTER_MAX_PER_ADDRESS,
        window_seconds=settings.REGISTER_WINDOW_SECONDS,
    ).attempt(account=None, address=client_ip)
    normalized = email_normalize(email)
    candidate = User(email=normalized, roles=[ROLE_CUSTOMER])
    _password_validate(password=password, user=candidate)
    candidate.set_password(password)
    try:
        with transaction.atomic():
            if User.objects.filter(email=normalized).exists():
                raise _validation_error("email", "An account with this email already exists.")
            candidate.save(force_insert=True)
            outbox_enqueue(contracts.UserRegistered(user_id=str(candidate.pk), email=candidate.email))
    except IntegrityError as exc:  # a concurrent sign-up with the same email won the race
        raise _validation_error("email", "An account with this email already exists.") from exc
    return candidate


def user_authenticate(*, email: str, password: str, client_ip: str) -> User:
    """The active user these credentials belong to, or 401; limited per account and address."""
    normalized = email_normalize(email)
    limiter = abuse.login_limiter()
    limiter.attempt(account=normalized, address=client_ip)
    user = User.objects.filter(email=normalized).first()
    if user is None:
        _spend_hash_time(password)
        raise CredentialsRefused(INVALID_CREDENTIALS)
    # check_password upgrades an outdated hash (e.g. PBKDF2 → Argon2) when it matches.
    if not user.check_password(password) or not user.is_active:
        raise CredentialsRefused(INVALID_CREDENTIALS)
    limiter.forgive(account=normalized, address=client_ip)
    user.last_login = timezone.now()
    user.save(update_fields=["last_login"])
    return user


def user_deactivate(*, user: User) -> User:
    """Deactivated users cannot sign in or refresh; their access tokens die within one lifetime."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        if user.is_active:
            user.is_active = False
            user.deactivated_at = timezone.now()
            user.save(update_fields=["is_active", "deactivated_at"])
        user_refresh_tokens_revoke_all(user=user, reason="deactivated")
    return user


def user_self_deactivate(*, user: User, password: str, client_ip: str) -> User:
    password_confirm(user=user, password=password, client_ip=client_ip)
    return user_deactivate(user=user)


def user_erase(*, user_id: str) -> None:
    """The user asked to be forgotten: no email, no password, no sessions; the id stays as a tombstone."""
    with transaction.atomic():
        user = User.objects.select_for_update().filter(pk=user_id).first()
        if user is None:
            return
        user.email = f"erased-{user.pk}@erased.invalid"
        user.is_active = False
        user.deactivated_at = user.deactivated_at or timezone.now()
        user.roles = []
        _sync_admin_flags(user)
        user.set_unusable_password()
        user.save(
            update_fields=[
                "email",
                "is_active",
                "deactivated_at",
                "roles",
                "is_staff",
                "is_superuser",
                "password",
            ]
        )
        user.groups.clear()
        user_refresh_tokens_revoke_all(user=user, reason="erased")
        # The outstanding rows keep the old tokens' text, which holds the email claim.
        OutstandingToken.objects.filter(user=user).update(token="")


def _roles_save(*, user: User, roles: set[str]) -> User:
    user.roles = [role for role in USER_ROLES if role in roles]
    fields = ["roles", *_sync_admin_flags(user)]
    user.save(update_fields=fields)
    return user


def user_role_grant(*, user_id: str, role: str) -> User:
    """Admins only (checked by the caller). Takes effect in tokens at the next refresh or sign-in."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        return _roles_save(user=user, roles={*user.roles, role})


def user_role_remove(*, user_id: str, role: str, actor_id: str) -> User:
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        if role == ROLE_ADMIN and str(user.pk) == actor_id:
            # Nobody locks the platform out of its own administration by accident.
            raise Conflict("An admin cannot remove their own admin role; ask another admin.")
        return _roles_save(user=user, roles=set(user.roles) - {role})


def user_roles_set(*, user: User, roles: set[str]) -> User:
    """The auth admin's form: replace the roles at once."""
    with transaction.atomic():
        locked = User.objects.select_for_update().get(pk=user.pk)
        return _roles_save(user=locked, roles=roles)


# --- Passwords -----------------------------------------------------------------------------------


def password_confirm(*, user: User, password: str, client_ip: str) -> None:
    """A signed-in user proves they know the password (limited like sign-in); 403 when wrong."""
    limiter = abuse.password_check_limiter()
    account = str(user.pk)
    limiter.attempt(account=account, address=client_ip)
    if not user.check_password(password):
        raise Forbidden("The password is not correct.")
    limiter.forgive(account=account, address=client_ip)


def user_password_change(*, user: User, current_password: str, new_password: str, client_ip: str) -> TokenPair:
    """Change the password and end every session; the caller gets a fresh pair for this one."""
    password_confirm(user=user, password=current_password, client_ip=client_ip)
    _password_validate(password=new_password, user=user, field="new_password")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        user_refresh_tokens_revoke_all(user=user, reason="password_changed")
        return token_pair_issue(user=user)


def password_reset_request(*, email: str, client_ip: str) -> None:
    """Mail a reset link if an active account has this email; the caller never learns which."""
    normalized = email_normalize(email)
    abuse.password_reset_limiter().attempt(account=normalized, address=client_ip)
    with transaction.atomic():
        user = User.objects.filter(email=normalized, is_active=True).first()
        if user is not None and user.has_usable_password():
            outbox_enqueue(contracts.PasswordResetMail(user_id=str(user.pk)))


def password_reset_mail_send(*, user_id: str) -> bool:
    """Worker side of a reset request: make the one-time link and send it."""
    from django.core.mail import send_mail

    user = User.objects.filter(pk=user_id, is_active=True).first()
    if user is None:
        return False
    uid = urlsafe_base64_encode(force_bytes(user.pk))
    token = default_token_generator.make_token(user)
    link = settings.PASSWORD_RESET_URL.format(uid=uid, token=token)
    send_mail(
        subject="Reset your Bazaar password",
        message=(
            "Someone asked to reset the password of your Bazaar account.\n\n"
            f"To choose a new password, open:\n{link}\n\n"
            f"The link works once and expires in {settings.PASSWORD_RESET_TIMEOUT // 60} minutes. "
            "If you did not ask for this, ignore this mail."
        ),
        from_email=settings.DEFAULT_FROM_EMAIL,
        recipient_list=[user.email],
    )
    return True


def password_reset_confirm(*, uid: str, token: str, new_password: str, client_ip: str) -> None:
    """Set a new password from a mailed link; every session ends. The link works once."""
    limiter = abuse.password_reset_limiter()
    limiter.attempt(account=None, address=client_ip)
    invalid = _validation_error("token", "The reset link is invalid or has expired.")
    try:
        user_pk = force_str(urlsafe_base64_decode(uid))
        user = User.objects.filter(pk=user_pk, is_active=True).first()
    except (ValueError, TypeError, OverflowError, DjangoValidationError):
        user = None
    if user is None or not default_token_generator.check_token(user, token):
        raise invalid
    _password_validate(password=new_password, user=user, field="new_password")
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user.pk)
        user.set_password(new_password)
        user.save(update_fields=["password"])
        user_refresh_tokens_revoke_all(user=user, reason="password_reset")
    limiter.forgive(account=None, address=client_ip)


# --- Tokens --------------------------------------------------------------------------------------


def token_pair_issue(*, user: User) -> TokenPair:
    refresh = refresh_token_for(user)
    return TokenPair(access=str(refresh.access_token), refresh=str(refresh))


def user_refresh_tokens_revoke_all(*, user: User, reason: str) -> int:
    """End every session of ``user``: blacklist each refresh token not yet blacklisted (returns
    how many), and refuse every access token issued until now, at once, at the gateway and at
    every service (a "not before" time; see ``bazaar_common.auth.revocation``)."""
    with transaction.atomic():
        _access_tokens_revoke(user_id=str(user.pk), reason=reason)
        pending = list(
            OutstandingToken.objects.filter(user=user, blacklistedtoken__isnull=True).values_list("id", flat=True)
        )
        BlacklistedToken.objects.bulk_create(
            [BlacklistedToken(token_id=token_id) for token_id in pending], ignore_conflicts=True
        )
    return len(pending)


def _access_tokens_revoke(*, user_id: str, reason: str) -> None:
    """In the caller's transaction: announce the revocation (outbox, for auth's worker) and write
    it to Redis as soon as the transaction commits, so the next request is already refused."""
    message = contracts.SessionsRevoked(user_id=user_id, not_before_ms=revocation.now_ms(), reason=reason)
    outbox_enqueue(message)
    transaction.on_commit(lambda: access_tokens_revoked_record(message=message, immediate=True))


def access_tokens_revoked_record(*, message: contracts.SessionsRevoked, immediate: bool = False) -> None:
    """Write the "not before" time; from the commit hook a Redis error is logged (the outbox
    message writes it again), from the worker it raises so the message is retried."""
    try:
        revocation.sessions_revoke(
            user_id=message.user_id,
            not_before=message.not_before_ms,
            ttl_seconds=settings.REVOCATION_TTL_SECONDS,
        )
    except redis.RedisError:
        if not immediate:
            raise
        logger.warning("revocation not written yet; the outbox will retry", extra={"user_id": message.user_id})


def user_sign_out_everywhere(*, user_id: str) -> User:
    """An admin ends every session of a user (a stolen device, say); the account stays active."""
    with transaction.atomic():
        user = User.objects.select_for_update().get(pk=user_id)
        user_refresh_tokens_revoke_all(user=user, reason="signed_out_everywhere")
    return user


def refresh_tokens_flush_expired() -> int:
    """Forget refresh tokens past their expiry (with their blacklist and spend records)."""
    with transaction.atomic():
        deleted, _ = OutstandingToken.objects.filter(expires_at__lt=timezone.now()).delete()
    return deleted


def _refresh_parse(raw: str) -> BazaarRefreshToken:
    try:
        return BazaarRefreshToken(raw)  # type: ignore[arg-type]  # simplejwt's annotation omits the str it takes
    except TokenError as exc:
        raise CredentialsRefused(INVALID_REFRESH) from exc


def _refresh_consume(raw: str, *, reason: str) -> tuple[OutstandingToken | None, bool]:
    """Lock the presented refresh token and spend it. Returns (its row, was it spent before).

    A token presented after it was rotated or logged out means it leaked (or a client replays it):
    the whole family of that user is revoked, and the row is returned with ``True``. A token that
    was revoked in bulk (password change, deactivation) is refused without further effect.
    """
    token = _refresh_parse(raw)
    outstanding = OutstandingToken.objects.select_for_update().filter(jti=token["jti"]).order_by().first()
    user = outstanding.user if outstanding is not None else None
    if outstanding is None or user is None or str(outstanding.user_id) != token["sub"]:
        return None, False
    if SpentRefreshToken.objects.filter(token=outstanding).exists():
        user_refresh_tokens_revoke_all(user=user, reason="refresh_token_reused")
        return outstanding, True
    if BlacklistedToken.objects.filter(token=outstanding).exists():
        return None, False
    BlacklistedToken.objects.create(token=outstanding)
    SpentRefreshToken.objects.create(token=outstanding, reason=reason)
    return outstanding, False


def token_refresh(*, refresh: str) -> TokenPair:
    """Rotate: the presented refresh token is spent and a new pair issued with current roles."""
    with transaction.atomic():
        outstanding, reused = _refresh_consume(refresh, reason=SpentRefreshToken.REASON_ROTATED)
        user = outstanding.user if outstanding is not None else None
        pair = None
        if user is not None and not reused and user.is_active:
            pair = token_pair_issue(user=user)
    # Outside the block: the revocation above must commit even though the client gets a 401.
    if reused:
        user_id = str(outstanding.user_id) if outstanding is not None else ""
        logger.warning("refresh token reuse: every session of the user revoked", extra={"user_id": user_id})
    if pair is None:
        raise CredentialsRefused(INVALID_REFRESH)
    return pair


def token_revoke(*, refresh: str) -> None:
    """Log out: the refresh token stops working (a second logout with it counts as reuse)."""
    with transaction.atomic():
        outstanding, reused = _refresh_consume(refresh, reason=SpentRefreshToken.REASON_LOGGED_OUT)
    if outstanding is None or reused:
        raise CredentialsRefused(INVALID_REFRESH)


# --- Services and staff --------------------------------------------------------------------------


def _service_credentials() -> dict[str, list[str]]:
    """client id → its accepted secrets. A client may be listed twice ("orders:new,orders:old")
    while its secret is rotated: both are accepted until the old entry is removed."""
    credentials: dict[str, list[str]] = {}
    for entry in settings.SERVICE_CREDENTIALS.split(","):
        client_id, _, secret = entry.strip().partition(":")
        if client_id and secret:
            credentials.setdefault(client_id, []).append(secret)
    return credentials


def service_token_issue(*, client_id: str, client_secret: str, client_ip: str) -> tuple[str, int]:
    """A short-lived access token with role ``service`` for a service's own credential."""
    limiter = abuse.service_token_limiter()
    client_at_address = f"{client_id}@{client_ip}"
    limiter.attempt(account=client_at_address, address=client_ip)
    accepted = _service_credentials().get(client_id) or ["\0"]
    # compare_digest against every accepted secret (no early exit), and against a dummy for an
    # unknown client id, so the time taken tells nothing.
    matches = [hmac.compare_digest(secret.encode(), client_secret.encode()) for secret in accepted]
    if client_id not in _service_credentials() or not any(matches):
        raise CredentialsRefused("Unknown service credentials.")
    limiter.forgive(account=client_at_address, address=client_ip)
    return str(service_access_token(client_id)), settings.SERVICE_TOKEN_LIFETIME_SECONDS


def admin_credentials_check(*, email: str, password: str, client_ip: str) -> StaffIdentity | None:
    """This service's own admin sign-in (BAZAAR_ADMIN_CREDENTIALS_CHECK): None instead of errors."""
    try:
        user = user_authenticate(email=email, password=password, client_ip=client_ip)
    except (DomainError, ServiceUnavailable) as exc:
        logger.info("admin sign-in refused", extra={"reason": exc.__class__.__name__})
        return None
    return StaffIdentity(user_id=str(user.pk), email=user.email, roles=frozenset(user.roles))


# --- Development ---------------------------------------------------------------------------------


def demo_users_seed(*, accounts: Any, password: str) -> list[User]:
    """The demo accounts with their fixed ids, only into an empty database."""
    with transaction.atomic():
        if User.objects.exists():
            return []
        created = []
        for account in accounts:
            user = User(id=account.user_id, email=email_normalize(account.email), roles=list(account.roles))
            _sync_admin_flags(user)
            user.set_password(password)
            user.save(force_insert=True)
            created.append(user)
        return created
