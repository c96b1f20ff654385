"""Model permissions of the role groups ("merchant", "support", …) in a service's admin.

The admin sign-in backend keeps each staff member's local groups equal to their Bazaar roles; a
service decides in a data migration what each group may do in its admin::

    operations = [grant_role_permissions({"support": ["orders.view_order", "orders.change_order"]})]
"""

from __future__ import annotations

from typing import Any

from django.db import migrations


def _ensure_permissions(apps: Any) -> None:
    # Django creates permissions after all migrations have run; a data migration needs them now.
    from django.contrib.auth.management import create_permissions

    for app_config in apps.get_app_configs():
        app_config.models_module = True
        create_permissions(app_config, apps=apps, verbosity=0)
        app_config.models_module = None


def _permissions(apps: Any, dotted: list[str]) -> list[Any]:
    permission_model = apps.get_model("auth", "Permission")
    found = []
    for name in dotted:
        app_label, codename = name.split(".", 1)
        found.append(permission_model.objects.get(content_type__app_label=app_label, codename=codename))
    return found


def grant_role_permissions(group_permissions: dict[str, list[str]]) -> migrations.RunPython:
    """A reversible migration operation giving each role group its ``app_label.codename`` rights."""

    def grant(apps: Any, schema_editor: Any) -> None:
        _ensure_permissions(apps)
        group_model = apps.get_model("auth", "Group")
        for group_name, dotted in group_permissions.items():
            group, _ = group_model.objects.get_or_create(name=group_name)
            group.permissions.add(*_permissions(apps, dotted))

    def revoke(apps: Any, schema_editor: Any) -> None:
        group_model = apps.get_model("auth", "Group")
        for group_name, dotted in group_permissions.items():
            group = group_model.objects.filter(name=group_name).first()
            if group is not None:
                group.permissions.remove(*_permissions(apps, dotted))

    return migrations.RunPython(grant, revoke)
