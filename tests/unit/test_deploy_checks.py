"""`manage.py check --deploy` is an operator's checklist: quiet on the production settings that
docs/operations.md gives, and naming each problem of a laptop setup (SQLite, plain http, no key)."""

from __future__ import annotations

import base64
import os
import secrets
import subprocess
import sys
from pathlib import Path
from typing import Any

import pytest
from cryptography.hazmat.primitives.asymmetric.ed25519 import Ed25519PrivateKey

ROOT = Path(__file__).resolve().parents[2]

PRODUCTION_ENV = {
    "DEBUG": "0",
    "DATABASE_URL": "postgres://flagsvc:secret@db.internal:5432/flagsvc",  # the checks never connect
    "SECRET_KEY": secrets.token_urlsafe(48),
    "JWT_SECRET": secrets.token_urlsafe(48),
    "ALLOWED_HOSTS": "flags.example.com",
    "CSRF_TRUSTED_ORIGINS": "https://flags.example.com",
    "SECURE_PROXY_SSL_HEADER": "X-Forwarded-Proto",
    "SECURE_SSL_REDIRECT": "on",
    "SECURE_HSTS_SECONDS": "31536000",
    "SECURE_HSTS_INCLUDE_SUBDOMAINS": "on",
    "SECURE_HSTS_PRELOAD": "on",
    "SESSION_COOKIE_SECURE": "on",
    "CSRF_COOKIE_SECURE": "on",
}
LAPTOP_ENV = {
    **{name: value for name, value in PRODUCTION_ENV.items() if "SECURE" not in name},
    "DATABASE_URL": "sqlite:////tmp/flagsvc-check-never-opened.sqlite3",
}


def _check(env: dict[str, str], *options: str) -> subprocess.CompletedProcess[str]:
    base = {name: value for name, value in os.environ.items() if name in ("PATH", "HOME", "PYTHONPATH")}
    return subprocess.run(
        [sys.executable, "manage.py", "check", *options, "--fail-level", "WARNING"],
        cwd=ROOT,
        env={**base, **env},
        capture_output=True,
        text=True,
        timeout=120,
    )


def _signing_key() -> str:
    raw = Ed25519PrivateKey.generate().private_bytes_raw()
    return base64.urlsafe_b64encode(raw).decode().rstrip("=")


def test_check_deploy__production_settings_as_documented__no_issue() -> None:
    """Django's own deploy checks included: the list an operator reads is what is really wrong."""
    result = _check({**PRODUCTION_ENV, "SNAPSHOT_SIGNING_KEY": _signing_key()}, "--deploy")
    assert result.returncode == 0, result.stdout + result.stderr
    assert "System check identified no issues" in result.stdout, result.stdout


def test_check_deploy__sqlite_plain_http_no_key__names_each_problem() -> None:
    result = _check(LAPTOP_ENV, "--deploy")
    assert result.returncode == 1
    for check_id in ("flagsvc.W001", "evaluation.W001", "security.W004", "security.W008", "security.W010"):
        assert f"({check_id})" in result.stderr, result.stderr
    assert "DATABASE_URL=postgres://" in result.stderr
    # Django's checks for its own CSRF and X-Frame-Options classes: ours are subclasses (flagsvc.E002/E003
    # check them instead), so these would be false alarms.
    assert "security.W002" not in result.stderr and "security.W003" not in result.stderr
    # drf-spectacular's operationId collisions are gone (list routes are `..._list`).
    assert "drf_spectacular" not in result.stderr


def test_check_deploy__sqlite_under_debug__no_database_warning() -> None:
    result = _check({**LAPTOP_ENV, "DEBUG": "1"}, "--deploy")
    assert "(evaluation.W002)" in result.stderr  # the insecure development key, said under DEBUG
    assert "flagsvc.W001" not in result.stderr


def test_plain_check__sqlite_without_debug__no_database_warning() -> None:
    """Only `--deploy` says it: every management command runs the plain checks."""
    result = _check({**LAPTOP_ENV, "SNAPSHOT_SIGNING_KEY": _signing_key()})
    assert result.returncode == 0, result.stdout + result.stderr
    assert "flagsvc.W001" not in result.stdout + result.stderr


def test_check_deploy__csrf_middleware_removed__error_flagsvc_e002() -> None:
    from django.conf import settings
    from django.test import override_settings

    from flagsvc.checks import browser_protections

    without = [path for path in settings.MIDDLEWARE if "Csrf" not in path]
    with override_settings(MIDDLEWARE=without):
        ids = [message.id for message in browser_protections()]
    assert ids == ["flagsvc.E002"]
    assert browser_protections() == []


def test_ssl_redirect__probes_stay_on_plain_http__the_admin_moves_to_https() -> None:
    from django.test import Client, override_settings

    with override_settings(SECURE_SSL_REDIRECT=True):
        client = Client()
        assert client.get("/healthz").status_code == 200
        assert client.get("/metrics").status_code == 200
        admin = client.get("/admin/login/")
        assert admin.status_code == 301
        assert admin["Location"] == "https://testserver/admin/login/"
        assert client.get("/admin/login/", secure=True).status_code == 200


def test_proxy_ssl_header__a_header_name__becomes_djangos_setting(monkeypatch: Any) -> None:
    from flagsvc.env import ImproperlyConfiguredEnv, env_proxy_ssl_header

    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") == ("HTTP_X_FORWARDED_PROTO", "https")
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "")
    assert env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER") is None
    monkeypatch.setenv("SECURE_PROXY_SSL_HEADER", "X-Forwarded-Proto: https")
    with pytest.raises(ImproperlyConfiguredEnv, match="header name"):
        env_proxy_ssl_header("SECURE_PROXY_SSL_HEADER")
