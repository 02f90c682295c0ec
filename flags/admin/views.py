"""The flag admin's own views: the history timeline and one-click rollback (the preview panel is
`evaluation.admin_views`: evaluation sits above flags).

Each takes a flag that `FlagAdmin.get_object` has already scoped (another tenant's flag is 404
before we get here) and checks the role it needs: viewers read the timeline; editors also roll back.
"""

from __future__ import annotations

import json
from dataclasses import dataclass
from typing import TYPE_CHECKING, Any

from django.contrib import messages
from django.core.exceptions import PermissionDenied
from django.http import (
    HttpRequest,
    HttpResponse,
    HttpResponseNotAllowed,
    HttpResponseRedirect,
)
from django.template.response import TemplateResponse
from django.urls import reverse

from audit.models import AuditEntry
from audit.selectors import audit_list
from flags.approvals import ApprovalRequired
from flags.models import Flag
from flags.selectors import flag_versions
from flags.services import flag_rollback
from kernel.admin_writes import actor_of
from kernel.errors import as_api_error

if TYPE_CHECKING:
    from flags.admin import FlagAdmin

TIMELINE_LIMIT = 200


@dataclass(frozen=True)
class DiffRow:
    path: str
    before: str
    after: str


@dataclass(frozen=True)
class TimelineItem:
    entry: AuditEntry
    changes: list[DiffRow]
    is_current: bool
    can_roll_back: bool


def _shown(value: Any, limit: int = 400) -> str:
    if value is None:
        return "—"
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def diff_rows(diff: dict[str, Any]) -> list[DiffRow]:
    """An audit diff (`path → {from, to}`) as rows a person can read."""
    rows = []
    for path, change in sorted(diff.items()):
        change = change if isinstance(change, dict) else {}
        rows.append(DiffRow(path=path, before=_shown(change.get("from")), after=_shown(change.get("to"))))
    return rows


def timeline(flag: Flag, *, can_change: bool) -> list[TimelineItem]:
    """The flag's audit entries, newest first, each with its diff and whether it can be restored."""
    entries = list(audit_list(tenant=flag.tenant_id, entity="flag", entity_key=flag.key)[:TIMELINE_LIMIT])
    stored = set(flag_versions(tenant=flag.tenant_id, flag=flag).values_list("version", flat=True))
    live = flag.archived_at is None
    return [
        TimelineItem(
            entry=entry,
            changes=diff_rows(entry.diff or {}),
            is_current=entry.version == flag.version,
            can_roll_back=can_change and live and entry.version in stored and entry.version != flag.version,
        )
        for entry in entries
    ]


def history_response(model_admin: FlagAdmin, request: HttpRequest, flag: Flag) -> HttpResponse:
    if not model_admin.has_view_permission(request, flag):
        raise PermissionDenied
    can_change = model_admin.has_change_permission(request, flag)
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"History of {flag.key}",
        "subtitle": None,
        "opts": model_admin.opts,
        "original": flag,
        "items": timeline(flag, can_change=can_change),
        "limit": TIMELINE_LIMIT,
        "can_change": can_change,
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/flags/flag/history.html", context)


def rollback_response(model_admin: FlagAdmin, request: HttpRequest, flag: Flag) -> HttpResponse:
    if request.method != "POST":
        return HttpResponseNotAllowed(["POST"])
    if not model_admin.has_change_permission(request, flag):
        raise PermissionDenied
    history_url = reverse("admin:flags_flag_history", args=[flag.pk])
    raw = request.POST.get("version", "")
    if not raw.isdigit():
        messages.error(request, "Choose a version to roll back to.")
        return HttpResponseRedirect(history_url)
    try:
        rolled = flag_rollback(tenant=flag.tenant, key=flag.key, version=int(raw), actor=actor_of(request))
    except ApprovalRequired as exc:  # four eyes: the rollback waits in a change request
        from flags.admin.change_requests import opened_message  # the module imports this one

        messages.warning(request, opened_message(exc))
        return HttpResponseRedirect(history_url)
    except Exception as exc:
        err = as_api_error(exc)
        if err is None:
            raise
        messages.error(request, f"Nothing was rolled back: {err.message}")
        return HttpResponseRedirect(history_url)
    messages.success(
        request,
        f"Rolled {flag.key} back to the content of version {raw}; it is now version {rolled.version}.",
    )
    return HttpResponseRedirect(history_url)
