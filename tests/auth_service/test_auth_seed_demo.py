import pytest
from django.core.management import call_command

from auth_service.accounts.models import User
from bazaar_common.demo import DEMO_ACCOUNTS, DEMO_PASSWORD

pytestmark = pytest.mark.django_db


def test_seed_demo_creates_the_demo_accounts_once_with_their_ids_and_roles(login, capsys):
    call_command("seed_demo")
    call_command("seed_demo")

    assert User.objects.count() == 4
    for account in DEMO_ACCOUNTS:
        user = User.objects.get(pk=account.user_id)
        assert user.email == account.email
        assert set(user.roles) == set(account.roles)
        assert user.is_superuser == ("admin" in account.roles)
        assert login(account.email, DEMO_PASSWORD)["access"]
    assert "demo accounts not seeded" in capsys.readouterr().out


def test_seed_demo_leaves_a_database_with_users_alone(user):
    call_command("seed_demo")

    assert list(User.objects.values_list("pk", flat=True)) == [user.pk]
