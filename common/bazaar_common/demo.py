"""Demo accounts shared by every service's ``seed_demo`` command (development only).

User ids are UUIDs derived from the email, so each service can seed data that refers to the demo
users without asking the auth service.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

DEMO_NAMESPACE = uuid.UUID("6f1c2a52-2f0e-4c55-9a57-0d8f3b9e1a01")
DEMO_PASSWORD = "bazaar-demo-2026"


@dataclass(frozen=True)
class DemoAccount:
    email: str
    roles: tuple[str, ...]

    @property
    def user_id(self) -> str:
        return str(uuid.uuid5(DEMO_NAMESPACE, self.email))


DEMO_ADMIN = DemoAccount("admin@bazaar.test", ("admin", "customer"))
DEMO_SUPPORT = DemoAccount("support@bazaar.test", ("support", "customer"))
DEMO_MERCHANT = DemoAccount("merchant@bazaar.test", ("merchant", "customer"))
DEMO_CUSTOMER = DemoAccount("customer@bazaar.test", ("customer",))
DEMO_ACCOUNTS = (DEMO_ADMIN, DEMO_SUPPORT, DEMO_MERCHANT, DEMO_CUSTOMER)
DEMO_MERCHANT_SLUG = "acme-goods"
