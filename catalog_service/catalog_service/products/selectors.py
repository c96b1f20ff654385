"""Catalog reads: the public product list (search, filters, ordering), details, the category tree."""

from __future__ import annotations

from dataclasses import dataclass
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import connection
from django.db.models import F, Q, QuerySet, Value
from django.db.models.functions import Coalesce

from catalog_service.products.models import Category, Merchant, Product

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
        queryset = queryset.filter(available__gt=0)
    elif filters.in_stock is False:
        queryset = queryset.filter(available__lte=0)
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
