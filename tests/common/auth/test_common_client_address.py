import pytest
from django.test import RequestFactory

from bazaar_common.auth.client_address import client_address

TRUSTED = ["10.0.0.0/8", "::1"]


@pytest.mark.parametrize(
    ("remote", "forwarded", "expected"),
    [
        ("192.0.2.1", "", "192.0.2.1"),
        ("192.0.2.1", "203.0.113.9", "192.0.2.1"),  # untrusted peer: its header is ignored
        ("10.0.0.2", "203.0.113.9", "203.0.113.9"),
        ("10.0.0.2", "6.6.6.6, 203.0.113.9", "203.0.113.9"),  # a client-prepended entry is ignored
        ("10.0.0.2", "203.0.113.9, 10.0.0.7", "203.0.113.9"),  # chain of trusted proxies
        ("10.0.0.2", "not-an-ip", "10.0.0.2"),
        ("10.0.0.2", "", "10.0.0.2"),
        ("::1", "2001:db8::5", "2001:db8::5"),
        ("garbage", "203.0.113.9", "unknown"),
    ],
)
def test_client_address(remote, forwarded, expected):
    request = RequestFactory().get("/", REMOTE_ADDR=remote, HTTP_X_FORWARDED_FOR=forwarded)

    assert client_address(request, TRUSTED) == expected
