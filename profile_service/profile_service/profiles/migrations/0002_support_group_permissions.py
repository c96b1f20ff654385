"""Give the "support" group read-only access to profiles and addresses in the Django admin.

The Bazaar admin sign-in backend puts support staff's shadow users in a group named "support";
view permissions make the admin show them everything read-only. Admins are superusers.
"""

from django.db import migrations

from bazaar_common.auth.role_groups import grant_role_permissions


class Migration(migrations.Migration):
    dependencies = [
        ("profiles", "0001_initial"),
        ("auth", "0012_alter_user_first_name_max_length"),
        ("contenttypes", "0002_remove_content_type_name"),
    ]

    operations = [grant_role_permissions({"support": ["profiles.view_profile", "profiles.view_address"]})]
