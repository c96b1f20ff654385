"""Catalog reads: the public product list (search, filters, ordering), details, the category tree;
the merchant API's products, merchants and grants, always as one :class:`CatalogActor` sees them."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from bazaar_common.domain import Forbidden, InvalidInput, NotFound
from catalog_service.products import permissions
from catalog_service.products.models import Category, Merchant, MerchantMember, Product, ProductUserObjectPermission

# A product row with values its query annotated (``available``; the admin's stock columns). The
# django plugin types annotations only where ``annotate`` is called, not through helpers like
# with_availability, so code reading them takes the row untyped.
AnnotatedProduct = Any

ORDERINGS = {
    "price": ("price", "id"),
    "-price": ("-price", "-id"),
    "name": ("name", "id"),
    "-name": ("-name", "-id"),
    "newest": ("-created_at", "-id"),
}


@dataclass(frozen=True)
class ProductFilters:
    q: str = ""
    category_id: int | None = None
    merchant_id: int | None = None
    price_min: Decimal | None = None
    price_max: Decimal | None = None
    in_stock: bool | None = None
    ordering: str | None = None


def category_descendant_ids(*, category_id: int) -> set[int]:
    """The category and every category below it (one query; categories are few)."""
    children: dict[int | None, list[int]] = {}
    for pk, parent_id in Category.objects.values_list("pk", "parent_id"):
        children.setdefault(parent_id, []).append(pk)
    found, frontier = {category_id}, [category_id]
    while frontier:
        next_frontier = []
        for pk in frontier:
            for child in children.get(pk, []):
                if child not in found:  # a cycle written around the admin cannot loop forever
                    found.add(child)
                    next_frontier.append(child)
        frontier = next_frontier
    return found


def with_availability(queryset: QuerySet[Product]) -> QuerySet[Product]:
    """``available`` (on hand less reserved, 0 without a stock row) on every product."""
    return queryset.annotate(
        available=Coalesce(F("stock__on_hand"), Value(0)) - Coalesce(F("stock__reserved"), Value(0))
    )


def _search(queryset: QuerySet[Product], q: str) -> tuple[QuerySet[Product], bool]:
    """Full-text search with ranking on PostgreSQL; a case-insensitive match elsewhere."""
    if connection.vendor == "postgresql":
        from django.contrib.postgres.search import SearchQuery, SearchRank, SearchVector

        config = settings.CATALOG_SEARCH_CONFIG
        vector = (
            SearchVector("name", weight="A", config=config)
            + SearchVector("sku", weight="A", config="simple")
            + SearchVector("description", weight="B", config=config)
        )
        query = SearchQuery(q, search_type="websearch", config=config) | SearchQuery(
            q, search_type="websearch", config="simple"
        )
        ranked = queryset.annotate(search=vector, rank=SearchRank(vector, query)).filter(search=query)
        return ranked, True
    terms = q.split()
    for term in terms:
        queryset = queryset.filter(Q(name__icontains=term) | Q(description__icontains=term) | Q(sku__iexact=term))
    return queryset, False


def product_list_public(*, filters: ProductFilters) -> QuerySet[Product]:
    """Active products of active merchants, filtered and ordered; each annotated ``available``."""
    queryset = with_availability(
        Product.objects.filter(is_active=True, merchant__is_active=True).select_related("merchant", "category")
    )
    ranked = False
    if filters.q:
        queryset, ranked = _search(queryset, filters.q)
    if filters.category_id is not None:
        queryset = queryset.filter(category_id__in=category_descendant_ids(category_id=filters.category_id))
    if filters.merchant_id is not None:
        queryset = queryset.filter(merchant_id=filters.merchant_id)
    if filters.price_min is not None:
        queryset = queryset.filter(price__gte=filters.price_min)
    if filters.price_max is not None:
        queryset = queryset.filter(price__lte=filters.price_max)
    if filters.in_stock is True:
        queryset = queryset.filter(available__gt=0)  # type: ignore[misc]  # annotated, not a field
    elif filters.in_stock is False:
        queryset = queryset.filter(available__lte=0)  # type: ignore[misc]  # annotated, not a field
    if filters.ordering:
        return queryset.order_by(*ORDERINGS[filters.ordering])
    if ranked:
        return queryset.order_by("-rank", "-created_at", "-id")
    return queryset.order_by(*ORDERINGS["newest"])


def product_get_public(*, product_id: int) -> Product | None:
    return (
        with_availability(Product.objects.filter(is_active=True, merchant__is_active=True))
        .select_related("merchant", "category")
        .filter(pk=product_id)
        .first()
    )


def category_tree() -> list[dict[str, Any]]:
    """Every category as a nested tree (roots first, children by name)."""
    nodes: dict[int, dict[str, Any]] = {}
    parents: dict[int, int | None] = {}
    for category in Category.objects.order_by("name", "id"):
        nodes[category.pk] = {"id": category.pk, "name": category.name, "slug": category.slug, "children": []}
        parents[category.pk] = category.parent_id
    roots = []
    for pk, node in nodes.items():
        parent_id = parents[pk]
        if parent_id is None or parent_id not in nodes:
            roots.append(node)
        else:
            nodes[parent_id]["children"].append(node)
    return roots


def category_exists(*, category_id: int) -> bool:
    return Category.objects.filter(pk=category_id).exists()


def merchant_exists(*, merchant_id: int) -> bool:
    return Merchant.objects.filter(pk=merchant_id).exists()


def products_for_internal(*, ids: list[int]) -> list[Product]:
    """Products by id for other services, whatever their state (inactive ones included)."""
    return list(with_availability(Product.objects.filter(pk__in=ids).select_related("merchant")).order_by("pk"))


# --- The merchant API's reads: always for a CatalogActor (the API and the admin ask alike) --------


@dataclass(frozen=True)
class StockLevels:
    on_hand: int
    reserved: int

    @property
    def available(self) -> int:
        return self.on_hand - self.reserved


@dataclass(frozen=True)
class MerchantProduct:
    """A product as its merchant's people see it: with stock and the actor's rights on it."""

    product: Product
    stock: StockLevels
    permissions: list[str]


@dataclass(frozen=True)
class MerchantMembership:
    merchant: Merchant
    role: str | None  # the actor's role there; None for a platform admin who is no member


@dataclass(frozen=True)
class ProductGrant:
    user_id: str
    product_id: int
    permissions: list[str]


def merchant_products(
    *, actor: permissions.CatalogActor, merchant_id: int | None = None, is_active: bool | None = None
) -> QuerySet[Product]:
    """Every product the actor may see, in every state, oldest first."""
    queryset = permissions.visible_products(actor).select_related("merchant", "category").order_by("id")
    if merchant_id is not None:
        queryset = queryset.filter(merchant_id=merchant_id)
    if is_active is not None:
        queryset = queryset.filter(is_active=is_active)
    return queryset


def merchant_product_get(
    *, actor: permissions.CatalogActor, product_id: int, permission: str = permissions.VIEW
) -> Product:
    """The product, if the actor may see it (else 404: it does not exist for them) and may do
    ``permission`` to it (else 403)."""
    product = merchant_products(actor=actor).filter(pk=product_id).first()
    if product is None:
        raise NotFound("No such product.")
    if permission != permissions.VIEW and not permissions.may(actor, product, permission):
        raise Forbidden("You may see this product but not do this to it.")
    return product


def merchant_product_details(*, actor: permissions.CatalogActor, products: list[Product]) -> list[MerchantProduct]:
    """Stock and the actor's rights for many products, in two queries for them all."""
    from catalog_service.inventory.models import Stock

    ids = [product.pk for product in products]
    stocks = {
        row["product_id"]: StockLevels(on_hand=row["on_hand"], reserved=row["reserved"])
        for row in Stock.objects.filter(product_id__in=ids).values("product_id", "on_hand", "reserved")
    }
    if actor.acts_on_all:
        granted: dict[int, list[str]] = {pk: list(permissions.PRODUCT_PERMISSIONS) for pk in ids}
    else:
        granted = {pk: [] for pk in ids}
        rows = ProductUserObjectPermission.objects.filter(
            user__username=actor.user_id, content_object_id__in=ids
        ).values_list("content_object_id", "permission__codename")
        for product_id, codename in rows:
            granted[product_id].append(codename)
    return [
        MerchantProduct(
            product=product,
            stock=stocks.get(product.pk, StockLevels(on_hand=0, reserved=0)),
            permissions=sorted(granted[product.pk]),
        )
        for product in products
    ]


def merchant_get(*, actor: permissions.CatalogActor, merchant_id: int, owner: bool = False) -> Merchant:
    """A merchant the actor belongs to (admins: any); 404 for others, 403 when ``owner`` is
    needed and the actor is a member of another role."""
    merchant = Merchant.objects.filter(pk=merchant_id).first()
    if merchant is None:
        raise NotFound("No such merchant.")
    if actor.acts_on_all:
        return merchant
    role = permissions.actor_merchant_role(actor, merchant.pk)
    if role is None:
        raise NotFound("No such merchant.")
    if owner and role != MerchantMember.Role.OWNER:
        raise Forbidden("Only an owner of this merchant may do this.")
    return merchant


def merchant_memberships(*, actor: permissions.CatalogActor) -> list[MerchantMembership]:
    """The merchants the actor works for with their role there (admins: every merchant)."""
    roles = dict(MerchantMember.objects.filter(user_id=actor.user_id).values_list("merchant_id", "role"))
    merchants = Merchant.objects.all() if actor.acts_on_all else Merchant.objects.filter(pk__in=roles)
    return [MerchantMembership(merchant=m, role=roles.get(m.pk)) for m in merchants.order_by("id")]


def merchant_for_new_product(*, actor: permissions.CatalogActor, merchant_id: int | None) -> Merchant:
    """Where a new product goes: the merchant named, which the actor must own or manage; without
    one, the only such merchant (admins must always name it)."""
    if actor.acts_on_all:
        if merchant_id is None:
            raise InvalidInput({"merchant_id": ["Required for admins."]})
        merchant = Merchant.objects.filter(pk=merchant_id).first()
        if merchant is None:
            raise InvalidInput({"merchant_id": ["No merchant with this id."]})
        return merchant
    allowed = list(permissions.merchants_accepting_products(actor).order_by("id"))
    if merchant_id is None:
        if len(allowed) != 1:
            raise InvalidInput({"merchant_id": ["Required: say which of your merchants."]})
        return allowed[0]
    for merchant in allowed:
        if merchant.pk == merchant_id:
            return merchant
    raise InvalidInput({"merchant_id": ["You cannot add products to this merchant."]})


def grant_targets(*, merchant: Merchant, user_id: str, product_ids: list[int]) -> list[Product]:
    """The products a grant names: all of this merchant's, to one of its members."""
    if permissions.member_role(user_id=user_id, merchant_id=merchant.pk) is None:
        raise InvalidInput({"user_id": ["Not a member of this merchant; add them first."]})
    wanted = set(product_ids)
    products = list(Product.objects.filter(merchant=merchant, pk__in=wanted).order_by("id"))
    missing = sorted(wanted - {product.pk for product in products})
    if missing:
        raise InvalidInput({"product_ids": [f"Not products of this merchant: {missing}."]})
    return products


def merchant_grants(*, merchant: Merchant) -> list[ProductGrant]:
    """Who holds which rights on the merchant's products, by user then product."""
    rows = (
        ProductUserObjectPermission.objects.filter(content_object__merchant=merchant)
        .order_by("user__username", "content_object_id", "permission__codename")
        .values_list("user__username", "content_object_id", "permission__codename")
    )
    grants: dict[tuple[str, int], list[str]] = {}
    for user_id, product_id, codename in rows:
        grants.setdefault((user_id, product_id), []).append(codename)
    return [
        ProductGrant(user_id=user_id, product_id=product_id, permissions=codenames)
        for (user_id, product_id), codenames in grants.items()
    ]


def product_grant_of(*, user_id: str, products: list[Product]) -> list[ProductGrant]:
    """The rights ``user_id`` holds on each of ``products`` now."""
    return [
        ProductGrant(
            user_id=user_id,
            product_id=product.pk,
            permissions=permissions.user_product_permissions(user_id=user_id, product=product),
        )
        for product in sorted(products, key=lambda p: p.pk)
    ]
