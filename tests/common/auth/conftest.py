import pytest

from bazaar_common.auth import testing


@pytest.fixture(autouse=True)
def _only_the_test_key_is_trusted():
    """Each test starts from a verifier that trusts the shared test key and nothing else."""
    testing.install_test_jwks()
