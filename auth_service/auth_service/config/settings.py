"""Settings of the auth service: the shared base from bazaar_common, then its own."""

from datetime import timedelta

from django.core.exceptions import ImproperlyConfigured

from bazaar_common.settings import env, env_int, identify, redis_url, repo_var_dir, require_env

identify("auth", package="auth_service")
# After identify: the shared settings follow from the service's name.
from bazaar_common.shared_settings import *  # noqa: E402,F403
from bazaar_common.shared_settings import DEBUG  # noqa: E402
from bazaar_common.shared_settings import INSTALLED_APPS as SHARED_APPS  # noqa: E402

INSTALLED_APPS = [*SHARED_APPS, "rest_framework_simplejwt.token_blacklist", "auth_service.accounts"]

# --- Accounts ------------------------------------------------------------------------------------
AUTH_USER_MODEL = "accounts.User"
# Argon2id (m=19 MiB, t=2, p=1: OWASP's minimum, see accounts/hashers.py) for every new hash;
# hashes with other Argon2 parameters, or PBKDF2 hashes made elsewhere, still verify and are
# re-hashed with these at the next successful sign-in.
PASSWORD_HASHERS = [
    "auth_service.accounts.hashers.BazaarArgon2PasswordHasher",
    "django.contrib.auth.hashers.PBKDF2PasswordHasher",
]
# This service's own admin checks the credentials in-process (other services ask over HTTP).
BAZAAR_ADMIN_CREDENTIALS_CHECK = "auth_service.accounts.services.admin_credentials_check"

# --- Tokens --------------------------------------------------------------------------------------
_ACCESS_TOKEN_LIFETIME = timedelta(seconds=env_int("JWT_ACCESS_TOKEN_LIFETIME_SECONDS", 300))
SIMPLE_JWT = {
    "ACCESS_TOKEN_LIFETIME": _ACCESS_TOKEN_LIFETIME,
    "REFRESH_TOKEN_LIFETIME": timedelta(seconds=env_int("JWT_REFRESH_TOKEN_LIFETIME_SECONDS", 24 * 3600)),
    "ROTATE_REFRESH_TOKENS": True,
    "BLACKLIST_AFTER_ROTATION": True,
    "ALGORITHM": "RS256",
    "USER_ID_FIELD": "id",
    "USER_ID_CLAIM": "sub",
    "TOKEN_TYPE_CLAIM": "token_type",
    "JTI_CLAIM": "jti",
    "UPDATE_LAST_LOGIN": False,
}
SERVICE_TOKEN_LIFETIME_SECONDS = env_int("SERVICE_TOKEN_LIFETIME_SECONDS", 300)
# A "not before" time is kept as long as an access token issued before it could still be valid.
REVOCATION_TTL_SECONDS = int(_ACCESS_TOKEN_LIFETIME.total_seconds()) + 2 * 60
# "client_id:secret,..." — each service's own credential for /internal/v1/auth/service-token.
SERVICE_CREDENTIALS = require_env("SERVICE_CREDENTIALS", debug=DEBUG, dev_default="")

# Signing keys: JWT_SIGNING_KEYS (JSON {kid: PEM}) or JWT_SIGNING_KEYS_DIR (<kid>.pem files).
# Development generates a key into var/keys/ on first run; production refuses to start without.
JWT_SIGNING_KEYS = env("JWT_SIGNING_KEYS", "") or ""
JWT_SIGNING_KEYS_DIR = env("JWT_SIGNING_KEYS_DIR", "") or ""
JWT_CURRENT_KID = env("JWT_CURRENT_KID", "") or ""
if JWT_SIGNING_KEYS:
    JWT_SIGNING_KEYS_SOURCE = "env"
elif JWT_SIGNING_KEYS_DIR:
    JWT_SIGNING_KEYS_SOURCE = "dir"
elif DEBUG:
    JWT_SIGNING_KEYS_SOURCE = "dir"
    JWT_SIGNING_KEYS_DIR = str(repo_var_dir() / "keys")
else:
    raise ImproperlyConfigured(
        "JWT_SIGNING_KEYS or JWT_SIGNING_KEYS_DIR is not set. The auth service needs its RS256 "
        "signing keys when DEBUG is off (see auth_service/README.md, 'Signing keys')."
    )
# The service's own token verifier reads the published keys in-process.
BAZAAR_LOCAL_JWKS = "auth_service.accounts.keys.local_jwks_document"

# --- Brute force ---------------------------------------------------------------------------------
ABUSE_REDIS_URL = env("ABUSE_REDIS_URL", redis_url()) or redis_url()
LOGIN_MAX_FAILURES_PER_ACCOUNT = env_int("LOGIN_MAX_FAILURES_PER_ACCOUNT", 5)
LOGIN_MAX_FAILURES_PER_ADDRESS = env_int("LOGIN_MAX_FAILURES_PER_ADDRESS", 30)
LOGIN_FAILURE_WINDOW_SECONDS = env_int("LOGIN_FAILURE_WINDOW_SECONDS", 15 * 60)
# The service-token exchange has limits of its own (see accounts/abuse.py).
SERVICE_TOKEN_MAX_FAILURES_PER_CLIENT = env_int("SERVICE_TOKEN_MAX_FAILURES_PER_CLIENT", 10)
SERVICE_TOKEN_MAX_FAILURES_PER_ADDRESS = env_int("SERVICE_TOKEN_MAX_FAILURES_PER_ADDRESS", 50)
SERVICE_TOKEN_FAILURE_WINDOW_SECONDS = env_int("SERVICE_TOKEN_FAILURE_WINDOW_SECONDS", 5 * 60)
PASSWORD_RESET_MAX_PER_ACCOUNT = env_int("PASSWORD_RESET_MAX_PER_ACCOUNT", 3)
PASSWORD_RESET_MAX_PER_ADDRESS = env_int("PASSWORD_RESET_MAX_PER_ADDRESS", 20)
PASSWORD_RESET_WINDOW_SECONDS = env_int("PASSWORD_RESET_WINDOW_SECONDS", 3600)
# Development and the end-to-end suites sign many accounts up from one address (127.0.0.1).
REGISTER_MAX_PER_ADDRESS = env_int("REGISTER_MAX_PER_ADDRESS", 1000 if DEBUG else 20)
REGISTER_WINDOW_SECONDS = env_int("REGISTER_WINDOW_SECONDS", 3600)

# --- Password reset mail -------------------------------------------------------------------------
PASSWORD_RESET_TIMEOUT = env_int("PASSWORD_RESET_TIMEOUT_SECONDS", 3600)
# Where the reset link points (the storefront's page that posts to .../password/reset/confirm).
PASSWORD_RESET_URL = env("PASSWORD_RESET_URL", "http://127.0.0.1:8000/reset-password?uid={uid}&token={token}") or ""
DEFAULT_FROM_EMAIL = env("DEFAULT_FROM_EMAIL", "Bazaar <no-reply@bazaar.test>")
EMAIL_BACKEND = env(
    "EMAIL_BACKEND",
    "django.core.mail.backends.console.EmailBackend" if DEBUG else "django.core.mail.backends.smtp.EmailBackend",
)
EMAIL_HOST = env("EMAIL_HOST", "localhost")
EMAIL_PORT = env_int("EMAIL_PORT", 25)
EMAIL_HOST_USER = env("EMAIL_HOST_USER", "") or ""
EMAIL_HOST_PASSWORD = env("EMAIL_HOST_PASSWORD", "") or ""
EMAIL_USE_TLS = (env("EMAIL_USE_TLS", "0") or "0").lower() in {"1", "true", "yes", "on"}

# --- Periodic tasks (beat runs embedded in one auth worker) ---------------------------------------
CELERY_BEAT_SCHEDULE = {
    "auth-flush-expired-tokens": {
        "task": "auth.flush_expired_tokens",
        "schedule": float(env_int("AUTH_FLUSH_EXPIRED_TOKENS_SECONDS", 3600)),
        "options": {"queue": "auth"},
    }
}
