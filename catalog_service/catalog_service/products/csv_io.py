"""CSV export and import of products (the merchants' bulk tool in the admin).

The import is all or nothing: every row is validated first, and if any row is bad the report lists
each bad row (line number, column, reason) and nothing is written. Rows are matched to existing
products by (merchant, sku): an existing product is updated, a new one is created. ``on_hand`` sets
the on-hand count through a ledgered adjustment.
"""

from __future__ import annotations

import csv
import io
import json
from dataclasses import dataclass, field
from decimal import Decimal
from typing import Any

from django.conf import settings
from django.db import transaction
from django.db.models import QuerySet
from rest_framework import serializers

from bazaar_common.domain import InvalidInput
from catalog_service.inventory.models import Stock
from catalog_service.inventory.services import stock_set_on_hand
from catalog_service.products import permissions, services
from catalog_service.products.models import Category, Merchant, Product

COLUMNS = [
    "merchant",
    "sku",
    "name",
    "description",
    "price",
    "currency",
    "category",
    "is_active",
    "on_hand",
    "image_urls",
    "attributes",
]
REQUIRED_COLUMNS = {"merchant", "sku", "name", "price"}
MAX_ROWS = 5000


def products_export_csv(*, queryset: QuerySet[Product]) -> str:
    out = io.StringIO()
    writer = csv.writer(out)
    writer.writerow(COLUMNS)
    stocks = dict(Stock.objects.filter(product__in=queryset).values_list("product_id", "on_hand"))
    for product in queryset.select_related("merchant", "category").order_by("merchant__slug", "sku"):
        writer.writerow(
            [
                product.merchant.slug,
                product.sku,
                product.name,
                product.description,
                f"{product.price:.2f}",
                product.currency,
                product.category.slug if product.category else "",
                "true" if product.is_active else "false",
                stocks.get(product.pk, 0),
                " ".join(product.image_urls),
                json.dumps(product.attributes, sort_keys=True) if product.attributes else "",
            ]
        )
    return out.getvalue()


class RowSerializer(serializers.Serializer):
    merchant = serializers.SlugField()
    sku = serializers.RegexField(r"^[A-Za-z0-9._-]{1,64}$", max_length=64)
    name = serializers.CharField(max_length=200)
    description = serializers.CharField(required=False, allow_blank=True, default="")
    price = serializers.DecimalField(max_digits=10, decimal_places=2, min_value=Decimal("0"))
    currency = serializers.CharField(required=False, allow_blank=True, default="")
    category = serializers.CharField(required=False, allow_blank=True, default="")
    is_active = serializers.CharField(required=False, allow_blank=True, default="true")
    on_hand = serializers.CharField(required=False, allow_blank=True, default="")
    image_urls = serializers.CharField(required=False, allow_blank=True, default="")
    attributes = serializers.CharField(required=False, allow_blank=True, default="")

    def validate_currency(self, value: str) -> str:
        value = (value or settings.CATALOG_DEFAULT_CURRENCY).upper()
        if value not in settings.CATALOG_CURRENCIES:
            raise serializers.ValidationError(f"Unsupported currency; one of {settings.CATALOG_CURRENCIES}.")
        return value

    def validate_is_active(self, value: str) -> bool:
        lowered = (value or "true").strip().lower()
        if lowered not in ("true", "false", "1", "0", "yes", "no"):
            raise serializers.ValidationError("Must be true or false.")
        return lowered in ("true", "1", "yes")

    def validate_on_hand(self, value: str) -> int | None:
        if not value.strip():
            return None
        if not value.strip().isdigit():
            raise serializers.ValidationError("Must be a whole number of units, 0 or more.")
        return int(value)

    def validate_image_urls(self, value: str) -> list[str]:
        urls = value.split()
        checker = serializers.URLField(max_length=500)
        for url in urls:
            checker.run_validation(url)
        return urls

    def validate_attributes(self, value: str) -> dict[str, Any]:
        if not value.strip():
            return {}
        try:
            parsed = json.loads(value)
        except json.JSONDecodeError as exc:
            raise serializers.ValidationError(f"Not valid JSON: {exc.msg}.") from exc
        if not isinstance(parsed, dict):
            raise serializers.ValidationError("Must be a JSON object.")
        return parsed


@dataclass
class ImportReport:
    created: int = 0
    updated: int = 0
    errors: list[dict[str, Any]] = field(default_factory=list)

    @property
    def ok(self) -> bool:
        return not self.errors


@dataclass
class _Row:
    line: int
    data: dict[str, Any]
    merchant: Merchant
    category: Category | None
    product: Product | None


class _Validator:
    """Checks every row against the file, the database and what the importing user may do."""

    def __init__(self, *, user_id: str, is_superuser: bool) -> None:
        self.user_id = user_id
        self.is_superuser = is_superuser
        self.merchants = {m.slug: m for m in Merchant.objects.all()}
        self.categories = {c.slug: c for c in Category.objects.all()}
        self.seen: dict[tuple[str, str], int] = {}
        self.errors: list[dict[str, Any]] = []

    def error(self, line: int, column: str, reason: str) -> None:
        self.errors.append({"row": line, "field": column, "reason": reason})

    def row(self, line: int, raw: dict[str, str]) -> _Row | None:
        serializer = RowSerializer(data={k: (v or "") for k, v in raw.items() if k in COLUMNS})
        if not serializer.is_valid():
            for column, reasons in serializer.errors.items():
                for reason in reasons:
                    self.error(line, column, str(reason))
            return None
        data = dict(serializer.validated_data)
        merchant = self._merchant(line, data["merchant"])
        category = self._category(line, data["category"])
        if merchant is None or (data["category"] and category is None):
            return None
        key = (merchant.slug, data["sku"])
        if key in self.seen:
            self.error(line, "sku", f"Same merchant and SKU as row {self.seen[key]}.")
            return None
        self.seen[key] = line
        product = Product.objects.filter(merchant=merchant, sku=data["sku"]).first()
        if product is not None and not self._may_change(product):
            self.error(line, "sku", "You may not change this existing product.")
            return None
        if product is not None and data["on_hand"] is not None:
            reserved = Stock.objects.filter(product=product).values_list("reserved", flat=True).first() or 0
            if data["on_hand"] < reserved:
                self.error(line, "on_hand", f"Below the {reserved} units reserved for orders.")
                return None
        return _Row(line=line, data=data, merchant=merchant, category=category, product=product)

    def _merchant(self, line: int, slug: str) -> Merchant | None:
        merchant = self.merchants.get(slug)
        if merchant is None:
            self.error(line, "merchant", "No merchant with this slug.")
            return None
        if not self.is_superuser and not permissions.can_add_products(user_id=self.user_id, merchant_id=merchant.pk):
            self.error(line, "merchant", "You cannot import products for this merchant.")
            return None
        return merchant

    def _category(self, line: int, slug: str) -> Category | None:
        if not slug:
            return None
        category = self.categories.get(slug)
        if category is None:
            self.error(line, "category", "No category with this slug.")
        return category

    def _may_change(self, product: Product) -> bool:
        if self.is_superuser:
            return True
        return permissions.user_has_product_permission(
            user_id=self.user_id, product=product, permission=permissions.CHANGE
        )


def _read_rows(file_text: str, report: ImportReport) -> list[tuple[int, dict[str, str]]] | None:
    reader = csv.DictReader(io.StringIO(file_text))
    header = reader.fieldnames or []
    missing = sorted(REQUIRED_COLUMNS - set(header))
    unknown = sorted(set(header) - set(COLUMNS))
    if missing or unknown:
        if missing:
            report.errors.append({"row": 1, "field": "header", "reason": f"Missing columns: {missing}."})
        if unknown:
            report.errors.append({"row": 1, "field": "header", "reason": f"Unknown columns: {unknown}."})
        return None
    rows = [(reader.line_num, raw) for raw in reader]
    if len(rows) > MAX_ROWS:
        report.errors.append({"row": 1, "field": "file", "reason": f"At most {MAX_ROWS} rows per file."})
        return None
    if not rows:
        report.errors.append({"row": 1, "field": "file", "reason": "The file has no product rows."})
        return None
    return rows


def products_import_csv(*, file_text: str, user_id: str, is_superuser: bool) -> ImportReport:
    """Validate every row; write all of them in one transaction only if none is bad."""
    report = ImportReport()
    rows = _read_rows(file_text, report)
    if rows is None:
        return report
    validator = _Validator(user_id=user_id, is_superuser=is_superuser)
    valid = [row for line, raw in rows if (row := validator.row(line, raw)) is not None]
    report.errors = validator.errors
    if report.errors:
        return report
    current = valid[0]
    try:
        with transaction.atomic():
            for row in valid:
                current = row
                _apply_row(row, user_id=user_id, report=report)
    except InvalidInput as exc:  # the stock moved between validation and writing
        report.created = report.updated = 0
        for column, reasons in exc.field_errors.items():
            field_name = "on_hand" if column == "delta" else column
            for reason in reasons if isinstance(reasons, list) else [reasons]:
                report.errors.append({"row": current.line, "field": field_name, "reason": str(reason)})
    return report


def _apply_row(row: _Row, *, user_id: str, report: ImportReport) -> None:
    data = row.data
    fields = {
        "name": data["name"],
        "description": data["description"],
        "price": data["price"],
        "currency": data["currency"],
        "category": row.category,
        "is_active": data["is_active"],
        "image_urls": data["image_urls"],
        "attributes": data["attributes"],
    }
    if row.product is None:
        services.product_create(
            merchant=row.merchant,
            actor_id=user_id,
            sku=data["sku"],
            initial_stock=data["on_hand"] or 0,
            stock_reason="import",
            **fields,
        )
        report.created += 1
        return
    services.product_update(product=row.product, data=fields)
    if data["on_hand"] is not None:
        stock_set_on_hand(
            product_id=row.product.pk,
            on_hand=data["on_hand"],
            actor=user_id,
            note="CSV import",
            reason="import",
        )
    report.updated += 1
