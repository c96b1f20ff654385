"""Who may touch which product: django-guardian object permissions on shadow users, in one place.

A Bazaar user (a UUID from the auth service) is represented here by a local Django "shadow" user
whose ``username`` is that UUID; the admin sign-in backend keeps the same users. Object permissions
on products are assigned to those users:

* owners and managers of a merchant hold every product permission on every product of it
  (assigned when they join and whenever a product is created);
* a colleague holds only what an owner granted, product by product.

The API (JWT principals) and the Django admin (sessions) both ask the same functions below.
"""

from __future__ import annotations

from collections.abc import Iterable
from dataclasses import dataclass
from typing import Any

from django.contrib.auth import get_user_model
from django.contrib.auth.models import AbstractUser
from django.db.models import QuerySet
from guardian.shortcuts import assign_perm, get_objects_for_user, get_perms, remove_perm
from rest_framework.permissions import BasePermission

from bazaar_common.auth.tokens import ROLE_ADMIN, ROLE_MERCHANT, Principal
from catalog_service.products.models import Merchant, MerchantMember, Product

VIEW = "view_product"
CHANGE = "change_product"
ADJUST_STOCK = "adjust_product_stock"
PRODUCT_PERMISSIONS = (VIEW, CHANGE, ADJUST_STOCK)


def shadow_user_get(user_id: str) -> AbstractUser | None:
    return get_user_model().objects.filter(username=user_id, is_active=True).first()


def shadow_user_ensure(user_id: str) -> AbstractUser:
    """The local user standing for Bazaar user ``user_id``; created without a usable password.

    Staff flags and role groups are the admin sign-in backend's business; it finds this user by
    username at the first sign-in and updates it.
    """
    user_model = get_user_model()
    user, created = user_model.objects.get_or_create(username=user_id)
    if created:
        user.set_unusable_password()
        user.save(update_fields=["password"])
    return user


def product_permissions_assign(*, user_id: str, products: Iterable[Product], permissions: Iterable[str]) -> None:
    user = shadow_user_ensure(user_id)
    product_list = list(products)
    if not product_list:
        return
    for codename in permissions:
        # guardian assigns to a list of objects in bulk, though its annotation names one object.
        assign_perm(f"products.{codename}", user, product_list)  # type: ignore[arg-type]


def product_permissions_remove(*, user_id: str, products: Iterable[Product], permissions: Iterable[str]) -> None:
    user = shadow_user_get(user_id)
    if user is None:
        return
    product_list = list(products)
    for codename in permissions:
        for product in product_list:
            remove_perm(f"products.{codename}", user, product)


def product_permissions_for_members(*, product: Product) -> None:
    """A new product: every owner and manager of its merchant gets every right on it."""
    for member in MerchantMember.objects.filter(merchant_id=product.merchant_id):
        if member.has_all_products:
            product_permissions_assign(user_id=member.user_id, products=[product], permissions=PRODUCT_PERMISSIONS)


def user_product_permissions(*, user_id: str, product: Product) -> list[str]:
    user = shadow_user_get(user_id)
    return sorted(get_perms(user, product)) if user is not None else []


def user_has_product_permission(*, user_id: str, product: Product, permission: str) -> bool:
    user = shadow_user_get(user_id)
    return user is not None and user.has_perm(f"products.{permission}", product)


def products_for_user(*, user_id: str, permission: str = VIEW) -> QuerySet[Product]:
    """Products the user holds ``permission`` on through object permissions only.

    Global model permissions (the "merchant" group's, needed to open the admin) must not widen
    this to every product, hence ``accept_global_perms=False``.
    """
    user = shadow_user_get(user_id)
    if user is None:
        return Product.objects.none()
    if user.is_superuser:
        return Product.objects.all()
    return get_objects_for_user(
        user, f"products.{permission}", klass=Product, accept_global_perms=False, with_superuser=True
    )


def merchants_of_user(*, user_id: str) -> QuerySet[Merchant]:
    return Merchant.objects.filter(members__user_id=user_id).distinct()


def member_role(*, user_id: str, merchant_id: int) -> str | None:
    return (
        MerchantMember.objects.filter(user_id=user_id, merchant_id=merchant_id).values_list("role", flat=True).first()
    )


def can_add_products(*, user_id: str, merchant_id: int) -> bool:
    return member_role(user_id=user_id, merchant_id=merchant_id) in (
        MerchantMember.Role.OWNER,
        MerchantMember.Role.MANAGER,
    )


def is_owner(*, user_id: str, merchant_id: int) -> bool:
    return member_role(user_id=user_id, merchant_id=merchant_id) == MerchantMember.Role.OWNER


def principal_is_admin(principal: Any) -> bool:
    return isinstance(principal, Principal) and principal.has_role(ROLE_ADMIN)


# --- The one set of access functions, for the API (JWT principals) and the admin (sessions) --------


@dataclass(frozen=True)
class CatalogActor:
    """Who acts on the catalog, whichever door they came in by.

    ``acts_on_all``: platform admins (role ``admin`` / admin superusers) see and change everything;
    ``reads_all``: support reads everything and changes nothing; everyone else is scoped by their
    memberships and object permissions.
    """

    user_id: str
    acts_on_all: bool = False
    reads_all: bool = False

    @property
    def sees_everything(self) -> bool:
        return self.acts_on_all or self.reads_all

    @property
    def read_only(self) -> bool:
        return self.reads_all and not self.acts_on_all


SUPPORT_GROUP = "support"


def actor_from_principal(principal: Principal) -> CatalogActor:
    return CatalogActor(user_id=principal.id, acts_on_all=principal_is_admin(principal))


def actor_from_admin_user(user: Any) -> CatalogActor:
    """An admin session's user: its username is the Bazaar user id (see the module docstring)."""
    return CatalogActor(
        user_id=user.username,
        acts_on_all=bool(user.is_superuser),
        reads_all=user.groups.filter(name=SUPPORT_GROUP).exists(),
    )


def visible_products(actor: CatalogActor, permission: str = VIEW) -> QuerySet[Product]:
    if actor.acts_on_all or (actor.reads_all and permission == VIEW):
        return Product.objects.all()
    if actor.read_only:
        return Product.objects.none()
    return products_for_user(user_id=actor.user_id, permission=permission)


def may(actor: CatalogActor, product: Product, permission: str) -> bool:
    if actor.acts_on_all:
        return True
    if permission == VIEW and actor.reads_all:
        return True
    if actor.read_only:
        return False
    return user_has_product_permission(user_id=actor.user_id, product=product, permission=permission)


def merchants_accepting_products(actor: CatalogActor) -> QuerySet[Merchant]:
    """Merchants the actor may add products to: their own as owner or manager (admins: all)."""
    if actor.acts_on_all:
        return Merchant.objects.all()
    if actor.read_only:
        return Merchant.objects.none()
    return Merchant.objects.filter(
        members__user_id=actor.user_id,
        members__role__in=[MerchantMember.Role.OWNER, MerchantMember.Role.MANAGER],
    ).distinct()


def actor_merchant_role(actor: CatalogActor, merchant_id: int) -> str | None:
    return member_role(user_id=actor.user_id, merchant_id=merchant_id)


class IsMerchantOrAdmin(BasePermission):
    """The merchant API: merchant users (scoped by object permissions) and platform admins."""

    def has_permission(self, request: Any, view: Any) -> bool:
        user = request.user
        return isinstance(user, Principal) and user.has_role(ROLE_MERCHANT, ROLE_ADMIN)
