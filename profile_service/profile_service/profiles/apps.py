from django.apps import AppConfig


class ProfilesConfig(AppConfig):
    name = "profile_service.profiles"
    label = "profiles"
    default_auto_field = "django.db.models.BigAutoField"
