"""Give the "support" group (kept in sync by the admin sign-in backend) what support work needs:
view orders, carts and payments, and change orders (the cancel and refund admin actions)."""

from django.db import migrations

SUPPORT_PERMISSIONS = (
    "view_order",
    "change_order",
    "view_orderline",
    "view_orderevent",
    "view_paymentattempt",
    "view_cart",
    "view_cartitem",
)


def grant_support(apps, schema_editor):
    from django.contrib.auth.management import create_permissions

    # Permissions are normally created after all migrations; create ours now to grant them.
    app_config = apps.get_app_config("orders")
    app_config.models_module = True
    create_permissions(app_config, apps=apps, verbosity=0)
    app_config.models_module = None
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group, _ = Group.objects.get_or_create(name="support")
    group.permissions.add(
        *Permission.objects.filter(content_type__app_label="orders", codename__in=SUPPORT_PERMISSIONS)
    )


def revoke_support(apps, schema_editor):
    Group = apps.get_model("auth", "Group")
    Permission = apps.get_model("auth", "Permission")
    group = Group.objects.filter(name="support").first()
    if group is not None:
        group.permissions.remove(
            *Permission.objects.filter(content_type__app_label="orders", codename__in=SUPPORT_PERMISSIONS)
        )


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [migrations.RunPython(grant_support, revoke_support)]
