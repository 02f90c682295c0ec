"""The address of the client a request came from: the one answer rate limits and logs use.

`X-Forwarded-For` is written by whoever sends the request, so by itself it proves nothing: a client
that rotates it would get a fresh rate-limit bucket per request. It counts only when the peer that
connected to us (`REMOTE_ADDR`) is a proxy we run, listed in `TRUSTED_PROXIES` (addresses or CIDRs,
default none). Then the header is read from the right, skipping our own proxies: the first address
that is not one of them was written by a trusted proxy about its peer, and is the client.
"""

from __future__ import annotations

import ipaddress
from functools import lru_cache

from django.conf import settings
from django.http import HttpRequest

Network = ipaddress.IPv4Network | ipaddress.IPv6Network
UNKNOWN = "unknown"


@lru_cache(maxsize=8)
def _networks(configured: tuple[str, ...]) -> tuple[Network, ...]:
    return tuple(ipaddress.ip_network(entry) for entry in configured)


def trusted_proxy_networks() -> tuple[Network, ...]:
    """`TRUSTED_PROXIES` parsed; a malformed entry fails loudly (settings check it at start too)."""
    return _networks(tuple(settings.TRUSTED_PROXIES))


def _parse(text: str) -> ipaddress.IPv4Address | ipaddress.IPv6Address | None:
    """An address, IPv4-mapped IPv6 (`::ffff:10.0.0.2`, from a dual-stack socket) as the IPv4 it is."""
    try:
        address = ipaddress.ip_address(text.strip())
    except ValueError:
        return None
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return address.ipv4_mapped
    return address


def _is_trusted(
    address: ipaddress.IPv4Address | ipaddress.IPv6Address, networks: tuple[Network, ...]
) -> bool:
    return any(address in network for network in networks)


def client_address(request: HttpRequest) -> str:
    """The client's IP address as text; `REMOTE_ADDR` unless it is a trusted proxy (module docstring)."""
    peer_text = str(request.META.get("REMOTE_ADDR") or "") or UNKNOWN
    networks = trusted_proxy_networks()
    if not networks:  # the default, and every request is logged with it: no parsing needed
        return peer_text
    peer = _parse(peer_text)
    if peer is None or not _is_trusted(peer, networks):
        return peer_text
    forwarded = str(request.META.get("HTTP_X_FORWARDED_FOR") or "")
    nearest_trusted = peer
    for hop in reversed(forwarded.split(",")):
        address = _parse(hop)
        if address is None:
            # No proxy of ours writes a malformed entry: what is left of it came from the client.
            return str(nearest_trusted)
        if not _is_trusted(address, networks):
            return str(address)
        nearest_trusted = address
    return str(nearest_trusted)
