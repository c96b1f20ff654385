"""Model permissions of the role groups the admin sign-in keeps in sync ("merchant", "support").

Model permissions only open the admin pages; which rows a merchant sees and may change is decided
per object (django-guardian) by the ModelAdmins.
"""

from django.db import migrations

GROUP_PERMISSIONS = {
    "merchant": [
        ("products", "view_product"),
        ("products", "add_product"),
        ("products", "change_product"),
        ("products", "adjust_product_stock"),
        ("products", "view_category"),
        ("products", "view_merchant"),
        ("inventory", "view_stock"),
        ("inventory", "view_stockmovement"),
    ],
    "support": [
        ("products", "view_product"),
        ("products", "view_category"),
        ("products", "view_merchant"),
        ("inventory", "view_stock"),
        ("inventory", "view_stockmovement"),
        ("inventory", "view_reservation"),
    ],
}


def _ensure_permissions(apps):
    # Permissions are normally created after all migrations ran; this migration needs them now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def grant(apps, schema_editor):
    _ensure_permissions(apps)
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, wanted in GROUP_PERMISSIONS.items():
        group, _ = Group.objects.get_or_create(name=group_name)
        for app_label, codename in wanted:
            permission = Permission.objects.get(content_type__app_label=app_label, codename=codename)
            group.permissions.add(permission)


def revoke(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    for group_name, wanted in GROUP_PERMISSIONS.items():
        group = Group.objects.filter(name=group_name).first()
        if group is None:
            continue
        for app_label, codename in wanted:
            group.permissions.remove(
                *Permission.objects.filter(content_type__app_label=app_label, codename=codename)
            )


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("products", "0001_initial"),
        ("inventory", "0001_initial"),
    ]

    operations = [migrations.RunPython(grant, revoke)]
