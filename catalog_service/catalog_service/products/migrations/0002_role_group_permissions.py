"""Model permissions of the role groups the admin sign-in keeps in sync ("merchant", "support").

Model permissions only open the admin pages; which rows a merchant sees and may change is decided
per object (django-guardian) by the ModelAdmins.
"""

from django.db import migrations

from bazaar_common.auth.role_groups import grant_role_permissions

GROUP_PERMISSIONS = {
    "merchant": [
        "products.view_product",
        "products.add_product",
        "products.change_product",
        "products.adjust_product_stock",
        "products.view_category",
        "products.view_merchant",
        "inventory.view_stock",
        "inventory.view_stockmovement",
    ],
    "support": [
        "products.view_product",
        "products.view_category",
        "products.view_merchant",
        "inventory.view_stock",
        "inventory.view_stockmovement",
        "inventory.view_reservation",
    ],
}


class Migration(migrations.Migration):
    dependencies = [
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
        ("products", "0001_initial"),
        ("inventory", "0001_initial"),
    ]

    operations = [grant_role_permissions(GROUP_PERMISSIONS)]
