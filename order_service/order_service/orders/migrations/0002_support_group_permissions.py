"""Give the "support" group (kept in sync by the admin sign-in backend) what support work needs:
view orders, carts and payments, and change orders (the cancel and refund admin actions)."""

from django.db import migrations

from bazaar_common.auth.role_groups import grant_role_permissions

SUPPORT_PERMISSIONS = [
    "orders.view_order",
    "orders.change_order",
    "orders.view_orderline",
    "orders.view_orderevent",
    "orders.view_paymentattempt",
    "orders.view_cart",
    "orders.view_cartitem",
]


class Migration(migrations.Migration):
    dependencies = [
        ("orders", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [grant_role_permissions({"support": SUPPORT_PERMISSIONS})]
