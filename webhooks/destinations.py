"""Where a webhook may POST: never into the service's own network unless the operator says so (SSRF).

A URL is checked twice. On create and update (`check_url`) its host, an address or a name resolved then,
must be public. At delivery (`pin`) the name is resolved once more and the request goes to that very
address (the Host header and TLS SNI keep the name), so a name that resolves elsewhere later (DNS
rebinding) or that always resolved to 127.0.0.1 never reaches a private address.

Refused: loopback, private, link-local, shared (CGNAT), multicast, reserved, unspecified and every other
non-global address, and IPv4-mapped IPv6 addresses whatever they map to. `WEBHOOK_ALLOW_PRIVATE_NETWORKS=1`
lifts the refusal (a receiver on the same network, the tests' receivers on loopback).
"""

from __future__ import annotations

import ipaddress
import socket
from dataclasses import dataclass
from urllib.parse import urlsplit

from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address


class DestinationRefused(Exception):
    """A URL or address a webhook may not reach; the message says why, for a person."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # as written in the URL (a name, or an address without brackets)
    port: int


@dataclass(frozen=True)
class PinnedDestination:
    destination: Destination
    addresses: tuple[IPAddress, ...]  # every one checked; tried in the resolver's order


def allow_private_networks() -> bool:
    return bool(getattr(settings, "WEBHOOK_ALLOW_PRIVATE_NETWORKS", False))


def refusal(address: IPAddress) -> str | None:
    """Why `address` is no place for a webhook, or None for a public address."""
    if isinstance(address, ipaddress.IPv6Address) and address.ipv4_mapped is not None:
        return "an IPv4-mapped IPv6 address"
    checks = (
        ("loopback", address.is_loopback),
        ("unspecified", address.is_unspecified),
        ("link-local", address.is_link_local),
        ("multicast", address.is_multicast),
        ("private", address.is_private),
        ("reserved", address.is_reserved),
        ("not globally routable", not address.is_global),
    )
    for name, hit in checks:
        if hit:
            return f"a {name} address"
    return None


def parse(url: str) -> Destination:
    """The scheme, host and port of an http(s) URL, or DestinationRefused naming what is wrong."""
    if len(url) > 2000:
        raise DestinationRefused("At most 2000 characters.")
    try:
        parts = urlsplit(url)
        port = parts.port
    except ValueError as error:
        raise DestinationRefused(f"Not a valid URL: {error}.") from None
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("Use an http:// or https:// URL.")
    if not parts.hostname:
        raise DestinationRefused("The URL has no host.")
    if parts.username is not None or parts.password is not None:
        raise DestinationRefused(
            "Credentials in the URL are not supported; put a token in the path or query."
        )
    if parts.fragment:
        raise DestinationRefused("A URL with a #fragment is not supported.")
    default_port = 443 if parts.scheme == "https" else 80
    return Destination(scheme=parts.scheme, host=parts.hostname, port=port or default_port)


def literal_address(host: str) -> IPAddress | None:
    try:
        return ipaddress.ip_address(host)
    except ValueError:
        return None


def resolve(destination: Destination) -> list[IPAddress]:
    """Every address the host resolves to (one DNS query), or DestinationRefused if none."""
    literal = literal_address(destination.host)
    if literal is not None:
        return [literal]
    try:
        infos = socket.getaddrinfo(destination.host, destination.port, type=socket.SOCK_STREAM)
    except (OSError, UnicodeError) as error:
        raise DestinationRefused(f"{destination.host} does not resolve ({error}).") from None
    addresses: list[IPAddress] = []
    for info in infos:
        address = ipaddress.ip_address(str(info[4][0]).split("%", 1)[0])
        if address not in addresses:
            addresses.append(address)
    if not addresses:
        raise DestinationRefused(f"{destination.host} does not resolve.")
    return addresses


def _refuse_any(destination: Destination, addresses: list[IPAddress]) -> None:
    if allow_private_networks():
        return
    for address in addresses:
        reason = refusal(address)
        if reason is not None:
            shown = (
                destination.host if literal_address(destination.host) else f"{destination.host} ({address})"
            )
            raise DestinationRefused(
                f"{shown} is {reason}; webhooks may reach only public addresses "
                "unless the operator sets WEBHOOK_ALLOW_PRIVATE_NETWORKS=1."
            )


def check_url(url: str) -> Destination:
    """The create/update check. A name that does not resolve now is accepted (it may, later): the check
    at delivery time is the one that counts. A name that resolves to any refused address is refused."""
    destination = parse(url)
    if destination.host.rstrip(".").lower() == "localhost" or destination.host.lower().endswith(".localhost"):
        _refuse_any(destination, [ipaddress.ip_address("127.0.0.1")])
    try:
        addresses = resolve(destination)
    except DestinationRefused:
        return destination
    _refuse_any(destination, addresses)
    return destination


def pin(url: str) -> PinnedDestination:
    """The delivery-time check: resolve once, refuse if any address is refused; the request goes to
    these addresses only (the next one if a connection fails, as a resolver-driven client would)."""
    destination = parse(url)
    addresses = resolve(destination)
    _refuse_any(destination, addresses)
    return PinnedDestination(destination=destination, addresses=tuple(addresses))
