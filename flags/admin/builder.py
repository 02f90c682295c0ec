"""What the flag and segment builders (flag_builder.js, segment_builder.js) read from the server.

The builders edit the same form fields that the JSON view shows and the form posts, so the server
path stays the one it was: the form's `clean()` asks the engine, whose problems carry exact paths
(`rules[1].when.any[0].value`). This module hands the builders, per tenant, the choices they offer
(attributes in use, the tenant's own segments and flags) and the problems of the last save, each
with the path of the control that caused it.
"""

from __future__ import annotations

import json
from typing import TYPE_CHECKING, Any

from django.forms import BaseForm
from django.http import Http404, HttpRequest, JsonResponse
from django.urls import reverse

from flags.admin.forms import NEW_FLAG_INITIAL
from flags.admin.vocabulary import vocabulary_json
from flags.models import Flag
from flags.selectors import attributes_in_use, flag_queryset
from kernel.admin_writes import ServiceForm
from segments.selectors import segment_queryset
from tenancy.models import Tenant

if TYPE_CHECKING:
    from tenancy.admin_scoping import TenantScopedAdmin

# Form field → the path of the flag document it edits (api.md, Flags).
FIELD_PATHS: dict[str, str] = {
    "variants": "variants",
    "off_variant": "off_variant",
    "targets_allow": "targets.allow",
    "targets_allow_variant": "targets.allow_variant",
    "targets_deny": "targets.deny",
    "rules": "rules",
    "default": "default",
    "prerequisites": "prerequisites",
}


# What a new flag of each type starts with on the add page (the boolean one is the form's initial).
NEW_FLAG_BY_TYPE: dict[str, dict[str, Any]] = {
    "boolean": {"variants": NEW_FLAG_INITIAL["variants"], "off_variant": NEW_FLAG_INITIAL["off_variant"]},
    "string": {
        "variants": [
            {"key": "control", "value": "control", "weight": 100},
            {"key": "treatment", "value": "treatment", "weight": 0},
        ],
        "off_variant": "control",
    },
    "number": {
        "variants": [
            {"key": "control", "value": 0, "weight": 100},
            {"key": "treatment", "value": 1, "weight": 0},
        ],
        "off_variant": "control",
    },
    "json": {
        "variants": [
            {"key": "control", "value": {}, "weight": 100},
            {"key": "treatment", "value": {}, "weight": 0},
        ],
        "off_variant": "control",
    },
}


def vocabulary() -> dict[str, Any]:
    parsed: dict[str, Any] = json.loads(vocabulary_json())
    return parsed


def flag_choices(tenant: Tenant | int) -> dict[str, Any]:
    """The tenant's own attributes, segments and live flags (with their variant keys)."""
    flags = flag_queryset(tenant=tenant).only("key", "name", "variants")
    return {
        "attributes": attributes_in_use(tenant=tenant),
        "segments": [
            {"key": key, "name": name}
            for key, name in segment_queryset(tenant=tenant).values_list("key", "name")
        ],
        "flags": [
            {
                "key": flag.key,
                "name": flag.name,
                "variants": [v.get("key") for v in flag.variants if isinstance(v, dict)]
                if isinstance(flag.variants, list)
                else [],
            }
            for flag in flags
        ],
    }


def problems_at_paths(form: BaseForm | None) -> list[dict[str, str]]:
    """Every problem of the fields the flag editor edits, at its document path (ServiceForm)."""
    return form.problems_at_paths(FIELD_PATHS) if isinstance(form, ServiceForm) else []


def builder_data(
    *,
    tenant: Tenant | int | None,
    form: BaseForm | None,
    choices_url: str,
    flag_key: str | None,
    flag_type: str | None,
) -> dict[str, Any]:
    """Everything `flag_builder.js` reads, as one `json_script`."""
    return {
        "vocabulary": vocabulary(),
        "tenant": tenant.pk if isinstance(tenant, Tenant) else tenant,
        "choices": flag_choices(tenant) if tenant is not None else None,
        "choices_url": choices_url,
        "flag_key": flag_key,
        "flag_type": flag_type,
        "new_flag_by_type": NEW_FLAG_BY_TYPE,
        "problems": problems_at_paths(form),
    }


def flag_builder_data(
    model_admin: TenantScopedAdmin[Any], request: HttpRequest, context: dict[str, Any], obj: Flag | None
) -> dict[str, Any] | None:
    """The flag editor's `json_script`, on pages where the person may edit (None elsewhere)."""
    if not (
        model_admin.has_change_permission(request, obj) if obj else model_admin.has_add_permission(request)
    ):
        return None
    adminform = context.get("adminform")
    form = adminform.form if adminform is not None else None
    return builder_data(
        tenant=obj.tenant_id if obj is not None else model_admin.form_tenant_id(request, form),
        form=form,
        choices_url=reverse("admin:flags_flag_builder_choices"),
        flag_key=obj.key if obj is not None else None,
        flag_type=obj.type if obj is not None else None,
    )


def choices_response(model_admin: TenantScopedAdmin[Any], request: HttpRequest) -> JsonResponse:
    """`GET ?tenant=<id>`: the choices of one tenant the person may edit in (404 otherwise, as for
    any object of a tenant out of reach). The add page asks again when its tenant changes."""
    tenant_id = model_admin.editable_tenant_id(request, request.GET.get("tenant"))
    if tenant_id is None:
        raise Http404("No such tenant.")
    return JsonResponse(flag_choices(tenant_id))


class FlagConditionWords:
    """Registered with `segments.condition_words`: the segment editor's words and attributes."""

    def builder_context(self, tenant_id: int) -> dict[str, Any]:
        return {"vocabulary": vocabulary(), "attributes": attributes_in_use(tenant=tenant_id)}


FLAG_CONDITION_WORDS = FlagConditionWords()
