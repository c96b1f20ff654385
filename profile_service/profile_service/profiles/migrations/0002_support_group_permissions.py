"""Give the "support" group read-only access to profiles and addresses in the Django admin.

The Bazaar admin sign-in backend puts support staff's shadow users in a group named "support";
view permissions make the admin show them everything read-only. Admins are superusers.
"""

from django.contrib.auth.management import create_permissions
from django.db import migrations

SUPPORT_GROUP = "support"
SUPPORT_PERMISSIONS = ("view_profile", "view_address")


def grant_support_view(apps, schema_editor):
    # Permissions are normally created after all migrations ran; create ours now so a fresh
    # database can reference them.
    app_config = apps.get_app_config("profiles")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None

    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name=SUPPORT_GROUP)
    permissions = Permission.objects.filter(
        content_type__app_label="profiles", codename__in=SUPPORT_PERMISSIONS
    )
    group.permissions.add(*permissions)


def revoke_support_view(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name=SUPPORT_GROUP).first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="profiles", codename__in=SUPPORT_PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_support_view, revoke_support_view)]
