"""The flag admin's own views: the history timeline, one-click rollback, and the preview panel's JSON.

Each takes a flag that `FlagAdmin.get_object` has already scoped (another tenant's flag is 404
before we get here) and checks the role it needs: viewers read the timeline and preview the stored
flag; editors also roll back and preview unsaved edits.
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
    JsonResponse,
)
from django.template.response import TemplateResponse
from django.urls import reverse
from flagsvc_sdk.engine import ValidationFailed

from audit.models import AuditEntry
from audit.selectors import audit_list
from evaluation.services import preview
from flags.models import Flag
from flags.selectors import flag_versions
from flags.services import flag_rollback
from kernel.admin_writes import actor_of
from kernel.errors import Invalid, as_api_error
from kernel.json_input import NotJson, parse_json

if TYPE_CHECKING:
    from flags.admin import FlagAdmin

TIMELINE_LIMIT = 200
SAMPLE_SIZE = 1000
SAMPLE_USER_IDS = tuple(f"sample-{n}" for n in range(SAMPLE_SIZE))
"""The synthetic users of the "would change" estimate; they share the attributes typed in the panel."""


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


def _json_error(message: str, status: int = 422, fields: list[dict[str, Any]] | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "fields": fields or []}, status=status)


def _preview_user(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    user_id = request.POST.get("_preview_user_id", "").strip()
    if not user_id:
        return _json_error("Enter a user id to preview.")
    raw = request.POST.get("_preview_attributes", "").strip() or "{}"
    try:
        attributes = parse_json(raw, root="attributes")
    except NotJson as exc:
        return _json_error(f"Attributes are not valid JSON: {exc}.")
    except ValidationFailed as exc:
        return _json_error(f"Attributes are refused: {exc}.")
    if not isinstance(attributes, dict):
        return _json_error('Attributes must be a JSON object, e.g. {"country": "NL", "plan": "pro"}.')
    return {"id": user_id, "attributes": attributes}


def _form_errors(form: Any) -> list[dict[str, Any]]:
    return [
        {
            "field": name,
            "label": str(form.fields[name].label or name) if name in form.fields else "",
            "messages": list(errs),
        }
        for name, errs in form.errors.items()
    ]


def preview_response(model_admin: FlagAdmin, request: HttpRequest, flag: Flag | None) -> JsonResponse:
    """Evaluate the form as it stands (unsaved) for one user, and for the sample of users.

    People who cannot change the flag preview the stored version. The panel posts the whole form, so
    the draft is built by the very form (and engine validation) that a save would use.
    """
    if request.method != "POST":
        return _json_error("POST the form to preview it.", status=405)
    user = _preview_user(request)
    if isinstance(user, JsonResponse):
        return user
    can_edit = (
        model_admin.has_change_permission(request, flag) if flag else model_admin.has_add_permission(request)
    )
    draft: dict[str, Any] | None = None
    if can_edit:
        form = model_admin.get_form(request, flag, change=flag is not None)(request.POST, instance=flag)
        if not form.is_valid():
            return _json_error(
                "Fix the form first: the draft is not a valid flag.", fields=_form_errors(form)
            )
        tenant, draft = form.target_tenant(), form.validated
        key = str(draft["key"]) if draft else ""
    elif flag is not None:
        tenant, key = flag.tenant, flag.key
    else:
        raise PermissionDenied
    body: dict[str, Any] = {"flag_key": key, "user": user}
    if draft is not None:
        body["flag"] = draft
    try:
        single = preview(tenant=tenant, body=body)["results"][0]
        sample = None
        if draft is not None:
            users = [{"id": uid, "attributes": user["attributes"]} for uid in SAMPLE_USER_IDS]
            sample = preview(tenant=tenant, body={"flag_key": key, "flag": draft, "users": users})["summary"]
    except Exception as exc:
        err = as_api_error(exc)
        if err is None:
            raise
        fields = err.details.get("fields") if isinstance(err, Invalid) else None
        listed = [{"field": p, "label": p, "messages": m} for p, m in (fields or {}).items()]
        return _json_error(err.message, status=err.status, fields=listed)
    return JsonResponse(
        {
            "draft": draft is not None,
            "result": single,
            "sample": None
            if sample is None
            else {"size": SAMPLE_SIZE, **sample, "changed": sample.get("changed")},
        }
    )
