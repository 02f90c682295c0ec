"""Every setting that comes from the environment is read here, and only here."""

from __future__ import annotations

import ipaddress
import os

DEV_JWT_SECRET = "dev-only-insecure-jwt-secret-do-not-use-in-production"
DEV_SECRET_KEY = "dev-only-insecure-django-secret-key-do-not-use-in-production"

_TRUE = {"1", "true", "yes", "on"}


def env_bool(name: str, default: bool = False) -> bool:
    raw = os.environ.get(name)
    if raw is None or raw == "":
        return default
    return raw.strip().lower() in _TRUE


def env_str(name: str, default: str = "") -> str:
    return os.environ.get(name, default) or default


def env_int(name: str, default: int) -> int:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return int(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be an integer, got {raw!r}") from exc


def env_float(name: str, default: float) -> float:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    try:
        return float(raw)
    except ValueError as exc:
        raise ImproperlyConfiguredEnv(f"{name} must be a number, got {raw!r}") from exc


def env_list(name: str, default: list[str]) -> list[str]:
    raw = os.environ.get(name)
    if raw is None or raw.strip() == "":
        return default
    return [part.strip() for part in raw.split(",") if part.strip()]


def env_networks(name: str) -> list[str]:
    """A comma-separated list of IP addresses or CIDRs, checked now so a typo fails at start."""
    entries = env_list(name, [])
    for entry in entries:
        try:
            ipaddress.ip_network(entry)
        except ValueError as exc:
            raise ImproperlyConfiguredEnv(f"{name}: {entry!r} is not an IP address or CIDR") from exc
    return entries


def env_proxy_ssl_header(name: str) -> tuple[str, str] | None:
    """A header name (`X-Forwarded-Proto`) as Django's `SECURE_PROXY_SSL_HEADER`: the request is
    secure when the proxy set that header to `https`."""
    raw = env_str(name).strip()
    if not raw:
        return None
    if not all(part.isalnum() for part in raw.split("-")):
        raise ImproperlyConfiguredEnv(f"{name} must be a header name such as X-Forwarded-Proto, got {raw!r}")
    return "HTTP_" + raw.upper().replace("-", "_"), "https"


class ImproperlyConfiguredEnv(RuntimeError):
    """A required environment variable is missing or malformed."""


def require_secret(name: str, *, debug: bool, dev_default: str) -> str:
    """Secrets come only from the environment; DEBUG alone may fall back to a loud dev default."""
    value = os.environ.get(name, "")
    if value:
        return value
    if debug:
        return dev_default
    raise ImproperlyConfiguredEnv(
        f"{name} must be set when DEBUG is off (e.g. `export {name}=$(openssl rand -hex 32)`)"
    )
