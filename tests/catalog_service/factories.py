"""factory_boy factories for the catalog; products are made through the service so that stock,
the ledger and member permissions exist exactly as in production."""

from __future__ import annotations

import uuid
from decimal import Decimal

import factory

from catalog_service.products import services
from catalog_service.products.models import Category, Merchant, MerchantMember, Product


def new_user_id() -> str:
    return str(uuid.uuid4())


class MerchantFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Merchant
        skip_postgeneration_save = True

    name = factory.Sequence(lambda n: f"Merchant {n}")
    slug = factory.Sequence(lambda n: f"merchant-{n}")

    @factory.post_generation
    def owner(self, create, extracted, **kwargs):
        if create and extracted:
            services.merchant_member_add(merchant=self, user_id=extracted, role=MerchantMember.Role.OWNER)


class CategoryFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Category

    name = factory.Sequence(lambda n: f"Category {n}")
    slug = factory.Sequence(lambda n: f"category-{n}")
    parent = None


class ProductFactory(factory.Factory):
    """Builds through ``product_create`` (stock row, initial ledger row, member permissions)."""

    class Meta:
        model = Product

    merchant = factory.SubFactory(MerchantFactory)
    sku = factory.Sequence(lambda n: f"SKU-{n:05d}")
    name = factory.Sequence(lambda n: f"Product {n}")
    price = Decimal("10.00")
    description = ""
    category = None
    is_active = True
    initial_stock = 10
    attributes = factory.LazyFunction(dict)

    @classmethod
    def _create(cls, model_class, **kwargs):
        return services.product_create(actor_id="test", **kwargs)

    @classmethod
    def _build(cls, model_class, **kwargs):
        raise NotImplementedError("use create(): products need their stock row")
