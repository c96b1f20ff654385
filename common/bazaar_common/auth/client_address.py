"""The address of the client behind a request, believing ``X-Forwarded-For`` only from our proxies.

A client can put anything into ``X-Forwarded-For``; only a hop listed in ``TRUSTED_PROXIES`` (the
gateway; IPs or CIDR networks) adds entries we believe. The header is read right to left and the
first address that is not a trusted proxy is the client, so entries a client prepended are ignored.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache
from typing import Any

IPNetwork = ipaddress.IPv4Network | ipaddress.IPv6Network


@lru_cache(maxsize=16)
def _networks(proxies: tuple[str, ...]) -> tuple[IPNetwork, ...]:
    return tuple(ipaddress.ip_network(proxy, strict=False) for proxy in proxies)


def _parse(address: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    try:
        return ipaddress.ip_address(address.strip())
    except ValueError:
        return None


def _is_trusted(address: Any, networks: tuple[IPNetwork, ...]) -> bool:
    return any(address.version == network.version and address in network for network in networks)


def client_address(request: Any, trusted_proxies: list[str] | tuple[str, ...] | None = None) -> str:
    """The client's IP address as a string (``"unknown"`` when the peer address is unusable)."""
    if trusted_proxies is None:
        from django.conf import settings

        trusted_proxies = getattr(settings, "TRUSTED_PROXIES", [])
    networks = _networks(tuple(trusted_proxies))
    peer = _parse(request.META.get("REMOTE_ADDR", "") or "")
    if peer is None:
        return "unknown"
    if not _is_trusted(peer, networks):
        return str(peer)
    forwarded = request.META.get("HTTP_X_FORWARDED_FOR", "")
    hops = [hop for hop in (part.strip() for part in forwarded.split(",")) if hop]
    for hop in reversed(hops):
        address = _parse(hop)
        if address is None:
            # Garbage in the chain: stop believing it and fall back to the last good hop.
            break
        if not _is_trusted(address, networks):
            return str(address)
        peer = address
    return str(peer)
