"""The admin groups named after the staff roles, with what each may do in the auth admin."""

from django.db import migrations

from bazaar_common.auth.role_groups import grant_role_permissions

# Support looks accounts up (to help a customer); changes are for admins (superusers) only.
GROUP_PERMISSIONS = {
    "support": ["accounts.view_user"],
    "merchant": [],
    "admin": [],
}


class Migration(migrations.Migration):
    dependencies = [
        ("accounts", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [grant_role_permissions(GROUP_PERMISSIONS)]
