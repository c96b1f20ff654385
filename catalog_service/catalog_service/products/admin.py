"""The catalog admin: the merchants' workplace (guarded by object permissions), admins see all.

Staff sign in with their Bazaar account; the sign-in backend keeps a shadow user whose username is
the Bazaar user id and puts it in the role groups ("merchant", "support"). Here:

* superusers (role admin) see and change everything;
* support (group "support") sees everything, changes nothing;
* everyone else sees only products they hold ``view_product`` on (django-guardian), changes only
  those they hold ``change_product`` on, and adjusts stock only with ``adjust_product_stock``.
"""

from __future__ import annotations

from typing import Any

from django import forms
from django.conf import settings
from django.contrib import admin, messages
from django.core.exceptions import PermissionDenied
from django.core.validators import URLValidator
from django.db.models import F, QuerySet
from django.http import HttpRequest, HttpResponse, HttpResponseRedirect
from django.shortcuts import get_object_or_404
from django.template.response import TemplateResponse
from django.urls import path, reverse
from django.utils.html import format_html

from bazaar_common.domain import InvalidInput
from catalog_service.inventory.services import stock_adjust
from catalog_service.products import csv_io, permissions, services
from catalog_service.products.models import Category, Merchant, MerchantMember, Product
from catalog_service.products.selectors import AnnotatedProduct, category_descendant_ids, with_availability

SUPPORT_GROUP = permissions.SUPPORT_GROUP


# The admin asks the same access functions as the API (permissions.*), through the session's actor.
def actor(request: HttpRequest) -> permissions.CatalogActor:
    return permissions.actor_from_admin_user(request.user)


def is_support(request: HttpRequest) -> bool:
    return actor(request).read_only


def sees_everything(request: HttpRequest) -> bool:
    return actor(request).sees_everything


def own_merchants(request: HttpRequest) -> QuerySet[Merchant]:
    return permissions.merchants_accepting_products(actor(request))


def may(request: HttpRequest, product: Product, permission: str) -> bool:
    return permissions.may(actor(request), product, permission)


class StockLevelFilter(admin.SimpleListFilter):
    title = "stock level"
    parameter_name = "stock"

    def lookups(self, request: HttpRequest, model_admin: Any) -> list[tuple[str, str]]:
        threshold = settings.CATALOG_LOW_STOCK_THRESHOLD
        return [
            ("out", "Out of stock"),
            ("low", f"Low (1–{threshold} available)"),
            ("ok", f"In stock (more than {threshold})"),
        ]

    def queryset(self, request: HttpRequest, queryset: QuerySet[Product]) -> QuerySet[Product]:
        threshold = settings.CATALOG_LOW_STOCK_THRESHOLD
        if self.value() == "out":
            return queryset.filter(available__lte=0)  # type: ignore[misc]  # annotated, not a field
        if self.value() == "low":
            return queryset.filter(available__gt=0, available__lte=threshold)  # type: ignore[misc]
        if self.value() == "ok":
            return queryset.filter(available__gt=threshold)  # type: ignore[misc]  # annotated, not a field
        return queryset


class StockAdjustForm(forms.Form):
    delta = forms.IntegerField(
        min_value=-10_000_000, max_value=10_000_000, help_text="Units to add (negative to remove)."
    )
    reason = forms.CharField(max_length=500, help_text="Why: delivery, stock take, damage…")


class CsvImportForm(forms.Form):
    file = forms.FileField(help_text=f"Columns: {', '.join(csv_io.COLUMNS)}")


class ProductForm(forms.ModelForm):
    initial_stock = forms.IntegerField(min_value=0, initial=0, required=False, help_text="New products only.")

    class Meta:
        model = Product
        fields = [
            "merchant",
            "sku",
            "name",
            "slug",
            "description",
            "price",
            "currency",
            "category",
            "is_active",
            "image_urls",
            "attributes",
        ]

    def clean_image_urls(self) -> list[str]:
        urls = self.cleaned_data.get("image_urls") or []
        if not isinstance(urls, list) or not all(isinstance(url, str) for url in urls):
            raise forms.ValidationError('A JSON list of image URLs, e.g. ["https://…/1.png"].')
        validate = URLValidator()
        for url in urls:
            validate(url)
        return urls

    def clean_attributes(self) -> dict[str, Any]:
        attributes = self.cleaned_data.get("attributes") or {}
        if not isinstance(attributes, dict):
            raise forms.ValidationError('A JSON object, e.g. {"colour": "red"}.')
        return attributes

    def clean_currency(self) -> str:
        currency = self.cleaned_data["currency"].upper()
        if currency not in settings.CATALOG_CURRENCIES:
            raise forms.ValidationError(f"Unsupported currency; one of {settings.CATALOG_CURRENCIES}.")
        return currency


@admin.register(Product)
class ProductAdmin(admin.ModelAdmin):
    form = ProductForm
    list_display = (
        "name",
        "sku",
        "merchant",
        "price",
        "currency",
        "is_active",
        "on_hand",
        "reserved",
        "available",
        "stock_link",
    )
    list_filter = (StockLevelFilter, "is_active", "category")
    search_fields = ("name", "sku")
    list_select_related = ("merchant", "category")
    actions = ["export_selected_csv", "deactivate_selected"]
    prepopulated_fields = {"slug": ("name",)}
    change_list_template = "admin/products/product/change_list.html"

    # --- scoping ---------------------------------------------------------------------------------
    def get_queryset(self, request: HttpRequest) -> QuerySet[Product]:
        base = permissions.visible_products(actor(request))
        return with_availability(base).annotate(stock_on_hand=F("stock__on_hand"), stock_reserved=F("stock__reserved"))

    def get_list_filter(self, request: HttpRequest) -> Any:
        if sees_everything(request):
            return (*self.list_filter, "merchant")
        return self.list_filter

    def has_view_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        if not super().has_view_permission(request, obj):
            return False
        return obj is None or sees_everything(request) or may(request, obj, permissions.VIEW)

    def has_change_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        if is_support(request) and not request.user.is_superuser:
            return False
        if not super().has_change_permission(request, obj):
            return False
        return obj is None or may(request, obj, permissions.CHANGE)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return super().has_add_permission(request) and own_merchants(request).exists()

    def has_delete_permission(self, request: HttpRequest, obj: Product | None = None) -> bool:
        return False  # products are deactivated, never deleted: orders and the ledger point at them

    def get_readonly_fields(self, request: HttpRequest, obj: Product | None = None) -> tuple[str, ...]:
        return ("merchant", "sku") if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Product | None = None) -> tuple[str, ...]:
        fields = tuple(ProductForm.Meta.fields)
        return fields if obj is not None else (*fields, "initial_stock")

    def formfield_for_foreignkey(self, db_field: Any, request: HttpRequest, **kwargs: Any) -> Any:
        if db_field.name == "merchant":
            kwargs["queryset"] = own_merchants(request)
        return super().formfield_for_foreignkey(db_field, request, **kwargs)

    # --- writes go through the services ----------------------------------------------------------
    def save_model(self, request: HttpRequest, obj: Product, form: Any, change: bool) -> None:
        data = {name: form.cleaned_data[name] for name in services.PRODUCT_EDITABLE_FIELDS if name in form.cleaned_data}
        if change:
            stored = Product.objects.get(pk=obj.pk)
            services.product_update(product=stored, data=data)
            return
        if not own_merchants(request).filter(pk=obj.merchant_id).exists():
            raise PermissionDenied
        created = services.product_create(
            merchant=obj.merchant,
            actor_id=request.user.username,
            sku=form.cleaned_data["sku"],
            initial_stock=form.cleaned_data.get("initial_stock") or 0,
            **data,
        )
        obj.pk = created.pk

    # --- columns -----------------------------------------------------------------------------------
    @admin.display(description="on hand", ordering="stock_on_hand")
    def on_hand(self, obj: AnnotatedProduct) -> int:
        return obj.stock_on_hand or 0

    @admin.display(description="reserved", ordering="stock_reserved")
    def reserved(self, obj: AnnotatedProduct) -> int:
        return obj.stock_reserved or 0

    @admin.display(description="available", ordering="available")
    def available(self, obj: AnnotatedProduct) -> int:
        return obj.available

    @admin.display(description="stock")
    def stock_link(self, obj: Product) -> str:
        url = reverse("admin:products_product_adjust_stock", args=[obj.pk])
        return format_html('<a href="{}">adjust</a>', url)

    # --- actions -----------------------------------------------------------------------------------
    @admin.action(description="Export selected products as CSV")
    def export_selected_csv(self, request: HttpRequest, queryset: QuerySet[Product]) -> HttpResponse:
        return self._csv_response(queryset)

    @admin.action(description="Deactivate selected products")
    def deactivate_selected(self, request: HttpRequest, queryset: QuerySet[Product]) -> None:
        changed = 0
        for product in queryset:
            if may(request, product, permissions.CHANGE) and not is_support(request):
                services.product_deactivate(product=product)
                changed += 1
        self.message_user(request, f"Deactivated {changed} product(s).", messages.SUCCESS)

    @staticmethod
    def _csv_response(queryset: QuerySet[Product]) -> HttpResponse:
        body = csv_io.products_export_csv(queryset=Product.objects.filter(pk__in=queryset.values("pk")))
        response = HttpResponse(body, content_type="text/csv; charset=utf-8")
        response["Content-Disposition"] = 'attachment; filename="products.csv"'
        return response

    # --- extra pages -------------------------------------------------------------------------------
    def get_urls(self) -> list[Any]:
        own = [
            path(
                "<int:product_id>/adjust-stock/",
                self.admin_site.admin_view(self.adjust_stock_view),
                name="products_product_adjust_stock",
            ),
            path(
                "import-csv/",
                self.admin_site.admin_view(self.import_csv_view),
                name="products_product_import",
            ),
            path(
                "export-csv/",
                self.admin_site.admin_view(self.export_csv_view),
                name="products_product_export",
            ),
        ]
        return own + super().get_urls()

    def adjust_stock_view(self, request: HttpRequest, product_id: int) -> HttpResponse:
        product = get_object_or_404(self.get_queryset(request), pk=product_id)
        if is_support(request) and not request.user.is_superuser:
            raise PermissionDenied
        if not may(request, product, permissions.ADJUST_STOCK):
            raise PermissionDenied
        form = StockAdjustForm(request.POST or None)
        if request.method == "POST" and form.is_valid():
            try:
                stock_adjust(
                    product_id=product.pk,
                    delta=form.cleaned_data["delta"],
                    note=form.cleaned_data["reason"],
                    actor=request.user.username,
                )
            except InvalidInput as exc:
                for reason in exc.field_errors.get("delta", []):
                    form.add_error("delta", str(reason))
            else:
                self.message_user(request, f"Stock of {product.name} adjusted.", messages.SUCCESS)
                return HttpResponseRedirect(reverse("admin:products_product_changelist"))
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": f"Adjust stock: {product.name}",
            "product": product,
            "form": form,
        }
        return TemplateResponse(request, "admin/products/product/adjust_stock.html", context)

    def import_csv_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_add_permission(request):
            raise PermissionDenied
        form = CsvImportForm(request.POST or None, request.FILES or None)
        report = None
        if request.method == "POST" and form.is_valid():
            try:
                text = form.cleaned_data["file"].read().decode("utf-8-sig")
            except UnicodeDecodeError:
                form.add_error("file", "The file must be UTF-8 text.")
            else:
                report = csv_io.products_import_csv(
                    file_text=text, user_id=request.user.username, is_superuser=request.user.is_superuser
                )
                if report.ok:
                    self.message_user(
                        request,
                        f"Imported: {report.created} created, {report.updated} updated.",
                        messages.SUCCESS,
                    )
                    return HttpResponseRedirect(reverse("admin:products_product_changelist"))
                self.message_user(
                    request, f"Nothing imported: {len(report.errors)} problem(s) in the file.", messages.ERROR
                )
        context = {
            **self.admin_site.each_context(request),
            "opts": self.model._meta,
            "title": "Import products from CSV",
            "form": form,
            "report": report,
            "columns": csv_io.COLUMNS,
        }
        return TemplateResponse(request, "admin/products/product/import_csv.html", context)

    def export_csv_view(self, request: HttpRequest) -> HttpResponse:
        if not self.has_view_permission(request):
            raise PermissionDenied
        return self._csv_response(self.get_queryset(request))


@admin.register(Merchant)
class MerchantAdmin(admin.ModelAdmin):
    list_display = ("name", "slug", "is_active", "created_at")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def get_queryset(self, request: HttpRequest) -> QuerySet[Merchant]:
        if sees_everything(request):
            return super().get_queryset(request)
        return Merchant.objects.filter(members__user_id=request.user.username).distinct()


@admin.register(MerchantMember)
class MerchantMemberAdmin(admin.ModelAdmin):
    list_display = ("merchant", "user_id", "role", "created_at")
    list_filter = ("role",)
    search_fields = ("user_id", "merchant__name")

    def save_model(self, request: HttpRequest, obj: MerchantMember, form: Any, change: bool) -> None:
        member = services.merchant_member_add(merchant=obj.merchant, user_id=obj.user_id, role=obj.role)
        obj.pk = member.pk


class CategoryForm(forms.ModelForm):
    class Meta:
        model = Category
        fields = ["name", "slug", "parent"]

    def clean_parent(self) -> Category | None:
        parent = self.cleaned_data.get("parent")
        if parent is not None and self.instance.pk is not None:
            below = category_descendant_ids(category_id=self.instance.pk)
            if parent.pk in below:
                raise forms.ValidationError("A category cannot sit below itself or its own descendants.")
        return parent


@admin.register(Category)
class CategoryAdmin(admin.ModelAdmin):
    form = CategoryForm
    list_display = ("name", "slug", "parent")
    search_fields = ("name", "slug")
    prepopulated_fields = {"slug": ("name",)}

    def save_model(self, request: HttpRequest, obj: Category, form: Any, change: bool) -> None:
        from catalog_service.products.cache import catalog_changed

        super().save_model(request, obj, form, change)
        catalog_changed(taxonomy=True)
