"""factory_boy factories for the profile service's models."""

from __future__ import annotations

import uuid

import factory

from profile_service.profiles.models import Address, Profile


class ProfileFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Profile

    user_id = factory.LazyFunction(uuid.uuid4)
    display_name = factory.Sequence(lambda n: f"Customer {n}")


class AddressFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = Address

    profile = factory.SubFactory(ProfileFactory)
    full_name = "Jane Doe"
    line1 = factory.Sequence(lambda n: f"{n} Main Street")
    city = "Berlin"
    postal_code = "10115"
    country = "DE"
