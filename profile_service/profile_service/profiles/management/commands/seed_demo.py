"""Seed demo profiles (development only): one per demo account, and an address for the customer.

Idempotent: running it again changes nothing that exists.
"""

from __future__ import annotations

import uuid

from django.core.management.base import BaseCommand

from bazaar_common import demo
from profile_service.profiles import selectors, services

DEMO_DISPLAY_NAMES = {
    demo.DEMO_ADMIN.email: "Ada Admin",
    demo.DEMO_SUPPORT.email: "Sam Support",
    demo.DEMO_MERCHANT.email: "Mia Merchant",
    demo.DEMO_CUSTOMER.email: "Cleo Customer",
}
DEMO_CUSTOMER_ADDRESS = {
    "label": "Home",
    "full_name": "Cleo Customer",
    "line1": "Friedrichstraße 123",
    "city": "Berlin",
    "postal_code": "10117",
    "country": "DE",
    "phone": "+4930901820",
    "is_default_shipping": True,
    "is_default_billing": True,
}


class Command(BaseCommand):
    help = "Create the demo users' profiles and the demo customer's default address."

    def handle(self, *args, **options) -> None:
        created = 0
        for account in demo.DEMO_ACCOUNTS:
            user_id = uuid.UUID(account.user_id)
            if selectors.profile_get(user_id=user_id) is not None:
                continue
            profile = services.profile_ensure(user_id=user_id)
            services.profile_update(profile=profile, changes={"display_name": DEMO_DISPLAY_NAMES[account.email]})
            if account is demo.DEMO_CUSTOMER:
                services.address_create(profile=profile, data=DEMO_CUSTOMER_ADDRESS)
            created += 1
        self.stdout.write(f"profiles: {created} demo profile(s) created")
