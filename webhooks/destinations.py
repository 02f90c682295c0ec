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
import re
import socket
import unicodedata
from dataclasses import dataclass

import httpx
from django.conf import settings

IPAddress = ipaddress.IPv4Address | ipaddress.IPv6Address

MAX_URL_CHARS = 2000
MAX_HOST_CHARS = 253
MAX_LABEL_CHARS = 63
_LABEL = re.compile(r"[a-z0-9_](?:[a-z0-9_-]*[a-z0-9_])?", re.IGNORECASE)


class DestinationRefused(Exception):
    """A URL or address a webhook may not reach; the message says why, for a person."""


@dataclass(frozen=True)
class Destination:
    scheme: str
    host: str  # a name in its ASCII (IDNA) form, or an address without brackets
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
    """The scheme, host and port of an http(s) URL, or DestinationRefused naming what is wrong.

    The URL is read by httpx, the library that sends it, so a URL accepted here is one the worker can
    send: a URL that the two read differently, or that only one can read, would be accepted on create and
    then fail every attempt. Whitespace and invisible characters are refused outright rather than quietly
    percent-encoded: they are almost always a paste mistake, and the stored URL should be the one shown."""
    if len(url) > MAX_URL_CHARS:
        raise DestinationRefused(f"At most {MAX_URL_CHARS} characters.")
    _refuse_invisible(url)
    try:
        parts = httpx.URL(url)
        parts.host  # noqa: B018 (decodes an xn-- name: IDNAError if it is not valid punycode)
    except (httpx.InvalidURL, UnicodeError) as error:  # idna.IDNAError is a UnicodeError
        raise DestinationRefused(f"Not a valid URL: {error}.") from None
    if parts.scheme not in ("http", "https"):
        raise DestinationRefused("Use an http:// or https:// URL.")
    host = parts.raw_host.decode("ascii")  # the IDNA (xn--) form of a non-ASCII name
    if not host:
        raise DestinationRefused("The URL has no host.")
    if parts.userinfo:
        raise DestinationRefused(
            "Credentials in the URL are not supported; put a token in the path or query."
        )
    if parts.fragment:
        raise DestinationRefused("A URL with a #fragment is not supported.")
    if parts.port is not None and not 1 <= parts.port <= 65535:
        raise DestinationRefused(f"The port must be from 1 to 65535, not {parts.port}.")
    _check_host(host)
    default_port = 443 if parts.scheme == "https" else 80
    return Destination(scheme=parts.scheme, host=host, port=parts.port or default_port)


def _refuse_invisible(url: str) -> None:
    """Whitespace, control characters (C0, DEL, C1) and invisible format characters (zero-width,
    bidirectional overrides) anywhere in the URL, named with their code point and position."""
    for index, char in enumerate(url):
        category = unicodedata.category(char)
        if char == " ":
            what = "a space"
        elif char.isspace() or category in ("Zl", "Zp", "Zs"):
            what = "whitespace"
        elif category in ("Cc", "Cs"):
            what = "a control character"
        elif category == "Cf":
            what = "an invisible formatting character"
        else:
            continue
        raise DestinationRefused(
            f"The URL contains {what} (U+{ord(char):04X}) at character {index + 1}; "
            "remove it, or percent-encode it if the receiver expects it."
        )


def _check_host(host: str) -> None:
    """An IPv6 or IPv4 address, or a DNS name of letters, digits, hyphens and underscores in labels of
    1 to 63 characters, 253 in all (RFC 1035 2.3.4): a name no resolver would look up is refused now
    rather than at every attempt."""
    if ":" in host:
        try:
            address = ipaddress.IPv6Address(host)
        except ValueError:
            raise DestinationRefused(f"[{host}] is not a valid IPv6 address.") from None
        if address.scope_id:
            raise DestinationRefused("An IPv6 address with a zone (%...) is not supported.")
        return
    if literal_address(host) is not None:
        return
    name = host[:-1] if host.endswith(".") else host
    if len(name) > MAX_HOST_CHARS:
        raise DestinationRefused(f"The host name is longer than {MAX_HOST_CHARS} characters.")
    for label in name.split("."):
        if not label:
            raise DestinationRefused(f"The host name {host} has an empty label (two dots in a row).")
        if len(label) > MAX_LABEL_CHARS:
            raise DestinationRefused(
                f"Each label of the host name (the parts between dots) is at most {MAX_LABEL_CHARS} "
                f"characters; {label[:20]}... has {len(label)}."
            )
        if not _LABEL.fullmatch(label):
            raise DestinationRefused(
                f"The host name {host} may contain only letters, digits, hyphens and underscores "
                "between its dots, and no label may start or end with a hyphen."
            )


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
