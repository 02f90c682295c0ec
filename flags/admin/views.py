"""The flag admin's own views: the history timeline and one-click rollback (the preview panel is
`evaluation.admin_views`: evaluation sits above flags).

Each takes a flag that `FlagAdmin.get_object` has already scoped (another tenant's flag is 404
before we get here) and checks the role it needs: viewers read the timeline; editors also roll back,
after a confirmation page that says what the rollback will change.
"""

from __future__ import annotations

from dataclasses import dataclass
from typing import TYPE_CHECKING

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
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from audit.selectors import audit_list
from flags.admin.history import Change, content_of, flag_changes, restored_version
from flags.admin.in_words import flag_in_words
from flags.admin.links import links_for
from flags.admin.vocabulary import format_datetime
from flags.approvals import ApprovalRequired
from flags.models import Flag
from flags.selectors import flag_version_get, flag_versions
from flags.services import flag_rollback
from kernel.admin_writes import actor_of
from kernel.errors import as_api_error

if TYPE_CHECKING:
    from flags.admin import FlagAdmin

TIMELINE_LIMIT = 200


@dataclass(frozen=True)
class TimelineItem:
    entry: AuditEntry
    when: str
    reason: str
    changes: list[Change]
    created: SafeString | None
    restored: int | None
    is_current: bool
    can_roll_back: bool


def timeline(flag: Flag, *, can_change: bool) -> list[TimelineItem]:
    """The flag's audit entries, newest first, each read in words, and whether it can be restored.

    The content of each version is the `after` of its entry (the same document its stored version
    holds), so the page reads no version documents. No rollback is offered to a version whose content
    is the current content: it would change nothing.
    """
    entries = list(audit_list(tenant=flag.tenant_id, entity="flag", entity_key=flag.key)[:TIMELINE_LIMIT])
    stored = set(flag_versions(tenant=flag.tenant_id, flag=flag).values_list("version", flat=True))
    contents = {e.version: content_of(e.after) for e in entries if e.version is not None and e.after}
    current = content_of(flag.content())
    links = links_for(flag.tenant_id)
    live = flag.archived_at is None
    items = []
    for entry in entries:
        version = entry.version
        created = entry.action == "create"
        earlier = {v: c for v, c in contents.items() if version is not None and v < version}
        items.append(
            TimelineItem(
                entry=entry,
                when=format_datetime(entry.ts),
                reason=entry.reason,
                changes=[] if created else flag_changes(entry.before, entry.after, links),
                created=flag_in_words(entry.after, links) if created and entry.after else None,
                restored=restored_version(entry.after, earlier) if entry.action == "rollback" else None,
                is_current=version == flag.version,
                can_roll_back=can_change
                and live
                and version in stored
                and version != flag.version
                and contents.get(version) != current,
            )
        )
    return items


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


def _rollback_target(request: HttpRequest) -> int | None:
    raw = (request.POST if request.method == "POST" else request.GET).get("version", "")
    return int(raw) if raw.isdigit() and len(raw) <= 9 else None


def rollback_response(model_admin: FlagAdmin, request: HttpRequest, flag: Flag) -> HttpResponse:
    """GET: what rolling back to a version would change, and a button; POST: roll back."""
    if request.method not in ("GET", "POST"):
        return HttpResponseNotAllowed(["GET", "POST"])
    if not model_admin.has_change_permission(request, flag):
        raise PermissionDenied("Rolling back a flag needs the editor or owner role in its tenant.")
    history_url = reverse("admin:flags_flag_history", args=[flag.pk])
    version = _rollback_target(request)
    if version is None:
        messages.error(request, "Choose a version to roll back to.")
        return HttpResponseRedirect(history_url)
    if request.method == "GET":
        return _rollback_confirmation(model_admin, request, flag, version, history_url)
    try:
        rolled = flag_rollback(tenant=flag.tenant, key=flag.key, version=version, actor=actor_of(request))
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
        f"Rolled {flag.key} back to the content of version {version}; it is now version {rolled.version}.",
    )
    return HttpResponseRedirect(history_url)


def _rollback_confirmation(
    model_admin: FlagAdmin, request: HttpRequest, flag: Flag, version: int, history_url: str
) -> HttpResponse:
    stored = flag_version_get(tenant=flag.tenant_id, flag=flag, version=version)
    if stored is None:
        messages.error(request, f"{flag.key} has no stored version {version}.")
        return HttpResponseRedirect(history_url)
    changes = flag_changes(flag.content(), stored.document, links_for(flag.tenant_id))
    context = {
        **model_admin.admin_site.each_context(request),
        "title": f"Roll {flag.key} back to version {version}?",
        "subtitle": None,
        "opts": model_admin.opts,
        "original": flag,
        "version": version,
        "version_when": format_datetime(stored.created_at),
        "version_actor": stored.actor,
        "changes": changes,
        "history_url": history_url,
        "has_view_permission": True,
    }
    return TemplateResponse(request, "admin/flags/flag/rollback_confirm.html", context)
