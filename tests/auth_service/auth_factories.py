import factory

from auth_service.accounts.models import User

PASSWORD = "correct-horse-battery-9"


class UserFactory(factory.django.DjangoModelFactory):
    class Meta:
        model = User
        skip_postgeneration_save = True

    email = factory.Sequence(lambda n: f"user{n}@example.com")
    roles = factory.LazyFunction(lambda: ["customer"])
    password = factory.django.Password(PASSWORD)
