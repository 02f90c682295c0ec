"""`/healthz`, `/readyz` (api.md, Operations) and `/`, a page of links for a person who opens the
service's address in a browser."""

from __future__ import annotations

import logging

from django.conf import settings
from django.db import connection
from django.http import HttpRequest, HttpResponse
from django.shortcuts import render
from django.views.decorators.http import require_GET, require_safe

from evaluation.cache import RULESETS

logger = logging.getLogger("flagsvc.ops")


@require_safe
def home(request: HttpRequest) -> HttpResponse:
    """Where to go from the bare address: the admin, the API documentation, health and readiness."""
    return render(request, "home.html")


@require_GET
def healthz(request: HttpRequest) -> HttpResponse:
    return HttpResponse("ok", content_type="text/plain")


@require_GET
def readyz(request: HttpRequest) -> HttpResponse:
    try:
        connection.ensure_connection()
        with connection.cursor() as cursor:
            cursor.execute("SELECT 1")
    except Exception as exc:
        logger.warning("readiness: database unreachable", extra={"error": str(exc)})
        connection.close_if_unusable_or_obsolete()
        return HttpResponse(
            f"database unreachable: {type(exc).__name__}", status=503, content_type="text/plain"
        )
    if settings.RULESET_WARM_ON_START and not RULESETS.warmed:
        try:
            RULESETS.warm_all()
        except Exception as exc:
            # The details go to the log, not to an unauthenticated caller.
            logger.exception("readiness: the rules cache could not be warmed")
            return HttpResponse(
                f"rules cache not warm: {type(exc).__name__}", status=503, content_type="text/plain"
            )
    return HttpResponse("ready", content_type="text/plain")
