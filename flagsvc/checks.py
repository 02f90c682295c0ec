"""Deployment checks for the service as a whole (`manage.py check --deploy`).

The checks of one part live with that part (`evaluation.checks` for the snapshot signing key); what is
here is about how the service is deployed.
"""

from __future__ import annotations

from typing import Any

from django.conf import settings
from django.core.checks import CheckMessage, Error, Tags, Warning, register
from django.middleware.clickjacking import XFrameOptionsMiddleware
from django.middleware.csrf import CsrfViewMiddleware
from django.utils.module_loading import import_string


@register(Tags.database, deploy=True)
def production_database(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """SQLite outside DEBUG: it is the laptop default, not a production database (docs/risks.md, 12)."""
    if settings.DEBUG or settings.DATABASES["default"]["ENGINE"] != "django.db.backends.sqlite3":
        return []
    return [
        Warning(
            "The database is SQLite with DEBUG off. SQLite is the default for a laptop: it lets one "
            "writer in at a time, the web, stream and worker processes must share one disk, and it "
            "cannot be shared by machines.",
            hint="Set DATABASE_URL=postgres://user:password@host:5432/name for production "
            "(docs/operations.md, Configuration).",
            id="flagsvc.W001",
        )
    ]


@register(Tags.security, deploy=True)
def browser_protections(app_configs: Any = None, **kwargs: Any) -> list[CheckMessage]:
    """The admin's CSRF and X-Frame-Options middleware is installed.

    Stands in for Django's security.W002 and W003 (silenced in settings): those look for Django's own
    classes by name, and ours are subclasses that skip `/v1` (flagsvc.middleware).
    """
    installed = [import_string(path) for path in settings.MIDDLEWARE]
    messages: list[CheckMessage] = []
    for base, setting, check_id in (
        (CsrfViewMiddleware, "CSRF protection of the admin's forms", "flagsvc.E002"),
        (
            XFrameOptionsMiddleware,
            "the X-Frame-Options header (no clickjacking of the admin)",
            "flagsvc.E003",
        ),
    ):
        if not any(isinstance(cls, type) and issubclass(cls, base) for cls in installed):
            messages.append(
                Error(
                    f"No middleware in MIDDLEWARE provides {setting}.",
                    hint=f"Install flagsvc.middleware.{base.__name__} (or {base.__module__}.{base.__name__}).",
                    id=check_id,
                )
            )
    return messages
