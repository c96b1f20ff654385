from django.apps import AppConfig


class AccountsConfig(AppConfig):
    name = "auth_service.accounts"
    label = "accounts"
    default_auto_field = "django.db.models.BigAutoField"

    def ready(self) -> None:
        from django.conf import settings

        from auth_service.accounts.keys import key_ring

        # Fail at start-up, not at the first sign-in: production without usable keys refuses to
        # run, and development generates its first key (and var/keys/jwks.json) right now.
        if settings.JWT_SIGNING_KEYS_SOURCE:
            key_ring()
