"""The flag admin's preview panel: evaluate the flag form as it stands, for one user and a sample.

It lives in `evaluation` (which reads flags) rather than in the flag admin, so that `flags` never imports
`evaluation`; the composition root (`flagsvc.urls`) mounts it under the flag admin's paths
(`/admin/flags/flag/preview/`, `/admin/flags/flag/<id>/preview/`) through the admin site's `admin_view`
(sign-in, CSRF, tenant scope). The flag comes from `FlagAdmin.get_object`, so another tenant's flag is a 404;
viewers preview the stored flag, editors also unsaved edits.
"""

from __future__ import annotations

import json
from typing import Any, cast

from django.contrib import admin
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import Http404, HttpRequest, HttpResponse, JsonResponse
from django.template.response import TemplateResponse
from django.urls import reverse

from evaluation.admin_users import RowsRefused, attributes_from_rows, rows_from, sample_users
from evaluation.services import evaluate_bulk, preview
from flags.admin import FlagAdmin
from flags.models import Flag
from flags.selectors import flag_queryset, segment_keys_in
from kernel.errors import Invalid, as_api_error
from segments.selectors import segment_queryset
from tenancy.admin_scoping import admin_access
from tenancy.models import Role, Tenant

SAMPLE_SIZE = 1000
"""The synthetic users of the "would change" estimate (`admin_users.sample_users`: varied ids and
attributes); the preview's own budgets (users, trace size, deadline) bound the work."""


def _flag_admin() -> FlagAdmin:
    return cast(FlagAdmin, admin.site.get_model_admin(Flag))


def flag_preview_view(request: HttpRequest, object_id: str) -> JsonResponse:
    """Preview a stored flag (with the unsaved edits of someone who may change it)."""
    model_admin = _flag_admin()
    flag = model_admin.get_object(request, unquote(object_id))
    if flag is None:
        raise Http404("No flag has this id.")
    return preview_response(model_admin, request, flag)


def flag_preview_new_view(request: HttpRequest) -> JsonResponse:
    """Preview the flag being added (someone who may add flags)."""
    return preview_response(_flag_admin(), request, None)


def _json_error(message: str, status: int = 422, fields: list[dict[str, Any]] | None = None) -> JsonResponse:
    return JsonResponse({"error": message, "fields": fields or []}, status=status)


def _preview_user(request: HttpRequest) -> dict[str, Any] | JsonResponse:
    user_id = request.POST.get("_preview_user_id", "").strip()
    if not user_id:
        return _json_error("Enter a user id to preview.")
    try:
        attributes = attributes_from_rows(rows_from(request.POST))
    except RowsRefused as exc:
        return _json_error(f"Attributes: {exc}")
    return {"id": user_id, "attributes": attributes}


def _sample(
    tenant: Tenant, draft: dict[str, Any], typed: dict[str, Any]
) -> tuple[list[dict[str, Any]], list[str]]:
    """The varied sample for this draft: the conditions of its rules and of the segments they use."""
    conditions: list[Any] = [rule.get("when") for rule in draft.get("rules") or [] if isinstance(rule, dict)]
    used = segment_keys_in(draft.get("rules"))
    if used:
        conditions += [
            when
            for when in segment_queryset(tenant=tenant)
            .filter(key__in=sorted(used))
            .values_list("when", flat=True)
            if when is not None
        ]
    return sample_users(
        size=SAMPLE_SIZE,
        seed=str(draft.get("key")),
        conditions=conditions,
        base=typed,
        bucket_by=str(draft.get("bucket_by") or "id"),
    )


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
        varied: list[str] = []
        if draft is not None and tenant is not None:
            users, varied = _sample(tenant, draft, user["attributes"])
            body = {"flag_key": key, "flag": draft, "users": users}
            sample = preview(tenant=tenant, body=body, moves=True)["summary"]
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
            else {"size": SAMPLE_SIZE, **sample, "changed": sample.get("changed"), "varied": varied},
        }
    )


# --- the playground: one user, every flag of a tenant -------------------------------------------------

REASON_WORDS: dict[str, str] = {
    "OFF": "the flag is off",
    "TARGET_MATCH": "targeted by id",
    "RULE_MATCH": "a rule matched",
    "PERCENTAGE_ROLLOUT": "placed by the percentage split",
    "DEFAULT": "no rule matched: the default",
    "PREREQUISITE_FAILED": "a prerequisite is not met",
    "ERROR": "could not be evaluated",
}


def _why(result: dict[str, Any]) -> str:
    reason = str(result.get("reason"))
    details = result.get("details") or {}
    words = REASON_WORDS.get(reason, reason)
    if reason == "RULE_MATCH" and result.get("rule_id"):
        return f"rule {result['rule_id']} matched"
    if reason == "TARGET_MATCH" and details.get("target") in ("allow", "deny"):
        return f"on the {details['target']} list"
    if reason == "PREREQUISITE_FAILED" and details.get("prerequisite"):
        return f"prerequisite {details['prerequisite']} is not met"
    if reason == "ERROR" and result.get("error_code"):
        return f"{words} ({result['error_code']})"
    return words


def playground_view(request: HttpRequest) -> HttpResponse:
    """GET: a form (tenant, user id, attribute rows); with a user id, every live flag of the tenant
    evaluated for that user by the engine (`evaluate_bulk`, the one door), with the variant and why."""
    site = admin.site
    access = admin_access(request)
    tenants = list(access.tenants().order_by("slug"))
    if not tenants:
        raise PermissionDenied("The playground needs a role (viewer, editor or owner) in a tenant.")
    raw_tenant = request.GET.get("tenant", "")
    tenant = next((t for t in tenants if str(t.pk) == raw_tenant), None) if raw_tenant else tenants[0]
    if tenant is None:
        raise Http404("No such tenant among yours.")
    user_id = request.GET.get("user_id", "").strip()
    rows = rows_from(request.GET)
    error = ""
    results: list[dict[str, Any]] = []
    if user_id:
        try:
            attributes = attributes_from_rows(rows)
            evaluated = evaluate_bulk(
                tenant=tenant, user={"id": user_id, "attributes": attributes}, record_metrics=False
            )["flags"]
        except RowsRefused as exc:
            error = f"Attributes: {exc}"
        except Exception as exc:
            err = as_api_error(exc)
            if err is None:
                raise
            error = err.message
        else:
            names = {
                key: (pk, name)
                for key, pk, name in flag_queryset(tenant=tenant).values_list("key", "pk", "name")
            }
            for key in sorted(evaluated):
                result = evaluated[key]
                pk, name = names.get(key, (None, ""))
                results.append(
                    {
                        "key": key,
                        "name": name,
                        "url": reverse("admin:flags_flag_change", args=[pk]) if pk else None,
                        "variant": result.get("variant"),
                        "value": json.dumps(result.get("value"), ensure_ascii=False),
                        "why": _why(result),
                        "reason": result.get("reason"),
                    }
                )
    context = {
        **site.each_context(request),
        "title": "Playground: one user, every flag",
        "subtitle": None,
        "tenants": tenants,
        "tenant": tenant,
        "user_id": user_id,
        "rows": [row for row in rows if row.name] or None,
        "results": results,
        "evaluated": bool(user_id) and not error,
        "can_add": access.can(tenant.pk, Role.EDITOR),
        "error": error,
    }
    return TemplateResponse(request, "admin/flags/playground.html", context)
