"""Create the demo accounts (fixed ids, shared password) when the database has no users."""

from __future__ import annotations

from typing import Any

from django.core.management.base import BaseCommand

from auth_service.accounts.services import demo_users_seed
from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD


class Command(BaseCommand):
    help = "Seed the demo accounts of bazaar_common.demo into an empty auth database."

    def handle(self, *args: Any, **options: Any) -> None:
        created = demo_users_seed(accounts=DEMO_ACCOUNTS, password=DEMO_PASSWORD)
        if not created:
            self.stdout.write("auth: users exist already; demo accounts not seeded.")
            return
        for user in created:
            self.stdout.write(f"auth: demo account {user.email} ({', '.join(user.role_list)}) id={user.pk}")
