"""Who may see and touch which order, in one place.

* customers: their own orders (another customer's order is a 404, not a 403: its existence is
  not revealed);
* merchants: orders containing their products, showing only their own lines and no customer email;
  they may mark their lines shipped;
* support and admin: every order.
"""

from __future__ import annotations

import uuid
from dataclasses import dataclass

from django.db.models import Q

from bazaar_common.auth.tokens import ROLE_CUSTOMER, ROLE_MERCHANT, Principal
from order_service.orders import clients
from order_service.orders.models import Order, OrderLine


@dataclass(frozen=True)
class OrderViewer:
    user_id: str
    is_customer: bool
    is_staff: bool
    merchant_ids: frozenset[int]

    def order_filter(self) -> Q | None:
        """The orders this viewer may see, as a filter (None: all of them)."""
        if self.is_staff:
            return None
        visible = Q(pk__in=[])
        if self.is_customer:
            visible |= Q(customer_id=self.user_id)
        if self.merchant_ids:
            visible |= Q(pk__in=OrderLine.objects.filter(merchant_id__in=self.merchant_ids).values("order_id"))
        return visible

    def sees_whole_order(self, order: Order) -> bool:
        return self.is_staff or str(order.customer_id) == self.user_id

    def visible_lines(self, order: Order) -> list[OrderLine]:
        lines = list(order.lines.all())
        if self.sees_whole_order(order):
            return lines
        return [line for line in lines if line.merchant_id in self.merchant_ids]

    def may_cancel(self, order: Order) -> bool:
        return self.is_staff or str(order.customer_id) == self.user_id

    def may_pay(self, order: Order) -> bool:
        return str(order.customer_id) == self.user_id

    def shippable_merchant_ids(self, order: Order) -> frozenset[int] | None:
        """Whose lines this viewer may mark shipped (None: all lines, for admins)."""
        if self.is_staff:
            return None
        return self.merchant_ids


def order_viewer_for(principal: Principal) -> OrderViewer:
    merchant_ids: frozenset[int] = frozenset()
    if principal.has_role(ROLE_MERCHANT):
        merchant_ids = clients.catalog_merchant_ids_of(user_id=principal.id)
    try:
        user_id = str(uuid.UUID(principal.id))
    except ValueError:  # not a user (a service token): it owns no orders
        user_id = ""
    return OrderViewer(
        user_id=user_id or principal.id,
        is_customer=bool(user_id) and principal.has_role(ROLE_CUSTOMER),
        is_staff=principal.is_staff_member,
        merchant_ids=merchant_ids,
    )
