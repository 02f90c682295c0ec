"""The flag editor: one field per part of a flag, checked by the engine in `clean()` (rules.md)."""

from __future__ import annotations

import re
from typing import Any

from django import forms
from flagsvc_sdk.engine import DefinitionError

from flags.models import Flag
from flags.selectors import flag_get
from flags.services import flag_validate
from kernel.admin_fields import IdListField, JsonDocumentField, ReasonField, TagListField
from kernel.admin_writes import ServiceForm
from kernel.errors import ApiError
from tenancy.change_policy import require_reason_by_policy
from tenancy.models import Tenant

NEW_FLAG_INITIAL: dict[str, Any] = {
    "type": "boolean",
    "state": "off",
    "variants": [
        # Safe until someone chooses otherwise: turned on, it still serves off to everyone.
        {"key": "on", "value": True, "weight": 0},
        {"key": "off", "value": False, "weight": 100},
    ],
    "off_variant": "off",
    "rules": [],
    "default": None,
    "prerequisites": [],
}

_TARGET_PART = re.compile(r"targets\.([A-Za-z_]+)")

HELP: dict[str, str] = {
    "key": "1-128 characters: letters, digits, '.', '_' or '-', starting with a letter or digit. "
    "Clients use it as-is; it cannot change later.",
    "type": "The type of every variant's value: boolean, string, number or json (an object or array, "
    "at most 32 KiB). It cannot change later.",
    "state": "Off serves the off variant to everyone. On evaluates prerequisites, targets, rules and "
    "then the default, in that order.",
    "variants": 'A list of {"key", "value", "weight"} with unique keys; each value has the flag\'s type. '
    "Weights are non-negative and need not sum to 100 (they are normalised); they split the users "
    'when the default is empty. A 20 % rollout: [{"key": "on", "value": true, "weight": 20}, '
    '{"key": "off", "value": false, "weight": 80}].',
    "off_variant": "Served when the flag is off, a prerequisite fails or a user is denied. "
    "Leave empty for a boolean flag to serve off.",
    "targets_allow": "User ids, one per line, that get the variant below (checked after prerequisites, "
    "before rules).",
    "targets_allow_variant": "The variant allowed users get. Empty means on for a boolean flag; "
    "required for other types when the allow list is used.",
    "targets_deny": "User ids, one per line, that always get the off variant. Deny wins over allow.",
    "rules": 'Ordered: the first rule whose "when" is true serves. Each rule is {"id", "description"?, '
    '"when": a condition, "serve": {"variant": "on"} or {"distribution": [{"variant": "on", '
    '"weight": 20}, ...]}}. A condition is {"attr": "country", "op": "eq", "value": "NL"}, '
    '{"segment": "beta-testers"}, {"all": [...]}, {"any": [...]} or {"not": {...}}. Operators: eq, '
    "neq, in, not_in, contains, starts_with, ends_with, regex, lt, lte, gt, gte, between, semver_eq, "
    "semver_lt, semver_lte, semver_gt, semver_gte, before, after, exists, not_exists.",
    "default": "Served when no rule matches. Empty (null) splits users by the variants' weights; or "
    '{"variant": "on"}; or {"distribution": [{"variant": "on", "weight": 20}, {"variant": "off", '
    '"weight": 80}]}.',
    "prerequisites": '[{"flag": "new-payments", "variants": ["on"]}]: each named live flag, evaluated for the '
    "same user, must give one of those variants, or this flag serves its off variant. Cycles are "
    "refused.",
    "bucket_by": "What places a user in a rollout bucket: id (the default), or an attribute such as "
    "account_id so that a whole account gets the same variant.",
    "tags": "Comma separated, e.g. checkout, team:payments.",
    "kill_category": "Optional. In an incident, engaging this kill switch (the Kill switches page) turns "
    "every live flag of the category off at once, and releasing it puts each back. Lowercase letters, "
    "digits, '-' or '_', e.g. payments.",
}


class FlagForm(ServiceForm):
    variants = JsonDocumentField(kind="list", required=True, rows=8, help_text=HELP["variants"])
    off_variant = forms.CharField(required=False, max_length=128, help_text=HELP["off_variant"])
    targets_allow = IdListField(label="Allow list", help_text=HELP["targets_allow"])
    targets_allow_variant = forms.CharField(
        required=False, max_length=128, label="Allowed users get", help_text=HELP["targets_allow_variant"]
    )
    targets_deny = IdListField(label="Deny list", help_text=HELP["targets_deny"])
    rules = JsonDocumentField(kind="list", rows=10, help_text=HELP["rules"])
    default = JsonDocumentField(
        kind="object_or_null", rows=4, label="Default (no rule matched)", help_text=HELP["default"]
    )
    prerequisites = JsonDocumentField(kind="list", rows=3, help_text=HELP["prerequisites"])
    bucket_by = forms.CharField(required=False, max_length=128, help_text=HELP["bucket_by"])
    tags = TagListField(help_text=HELP["tags"])
    kill_category = forms.CharField(
        required=False, max_length=64, label="Kill switch category", help_text=HELP["kill_category"]
    )
    expected_version = forms.IntegerField(required=False, widget=forms.HiddenInput)
    reason = ReasonField()

    class Meta:
        model = Flag
        fields = (
            "tenant",
            "key",
            "name",
            "description",
            "type",
            "state",
            "protected",
            "lifecycle",
            "remove_after",
        )
        help_texts = {
            "key": HELP["key"],
            "type": HELP["type"],
            "state": HELP["state"],
            "tenant": "The tenant (X-Tenant-ID) that owns the flag. It cannot change later.",
            "name": "A short human name shown in lists.",
            "description": "What the flag changes and who to ask about it.",
            "lifecycle": "Temporary: expected to be removed (reported stale when unused or serving one "
            "variant for STALE_AFTER_DAYS). Permanent: meant to stay, like a kill switch.",
            "remove_after": "Optional. After this date the flag is reported stale (YYYY-MM-DD).",
            "protected": "Four eyes: every later change of a protected flag (unprotecting it too) opens a "
            "change request that another person must approve before it is applied.",
        }
        widgets = {
            "state": forms.RadioSelect,
            "lifecycle": forms.RadioSelect,
            "remove_after": forms.DateInput(attrs={"type": "date"}, format="%Y-%m-%d"),
            "description": forms.Textarea(attrs={"rows": 2, "class": "vLargeTextField"}),
        }

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        flag: Flag = self.instance
        self.validated: dict[str, Any] | None = None
        if "lifecycle" in self.fields:
            self.fields["lifecycle"].required = False  # absent = temporary, the default
        if flag.pk is not None:
            targets = flag.targets if isinstance(flag.targets, dict) else {}
            self.initial["targets_allow"] = targets.get("allow") or []
            self.initial["targets_allow_variant"] = targets.get("allow_variant") or ""
            self.initial["targets_deny"] = targets.get("deny") or []
            self.initial["expected_version"] = flag.version
            self.initial["kill_category"] = flag.kill_category
        elif "protected" in self.fields and "tenant" in self.fields:
            self._explain_protect_new_flags()

    def _explain_protect_new_flags(self) -> None:
        """On the add page: name the tenants whose new flags are protected whatever the box says."""
        choices = getattr(self.fields["tenant"], "queryset", None)
        if choices is None:
            return
        policy = sorted(choices.filter(protect_new_flags=True).values_list("slug", flat=True))
        if not policy:
            return
        field = self.fields["protected"]
        if len(policy) == choices.count():  # every tenant the person may choose protects new flags
            self.initial["protected"] = True
            field.disabled = True  # ticked and fixed: the box shows what will happen
            field.help_text = (
                f"New flags of {', '.join(policy)} are always created protected (the tenant's policy): "
                "every later change of this flag opens a change request that another person approves."
            )
            return
        field.help_text = (
            f"New flags of {', '.join(policy)} are always created protected (the tenant's policy), "
            f"whatever this box says. {field.help_text}"
        )

    def field_for_path(self, path: str) -> str | None:
        part = _TARGET_PART.match(path)
        if part:
            return f"targets_{part.group(1)}"
        if path == "targets":
            return "targets_allow"
        return super().field_for_path(path)

    def target_tenant(self) -> Tenant | None:
        if "tenant" in self.fields:
            tenant = self.cleaned_data.get("tenant")
            return tenant if isinstance(tenant, Tenant) else None
        return self.instance.tenant

    def document(self) -> dict[str, Any]:
        """The flag document (api.md, Flags) the form describes, before the engine normalises it."""
        data = self.cleaned_data
        flag: Flag = self.instance
        return {
            "key": data.get("key") if "key" in self.fields else flag.key,
            "type": data.get("type") if "type" in self.fields else flag.type,
            "name": data.get("name", ""),
            "description": data.get("description", ""),
            "state": data.get("state"),
            "variants": data.get("variants"),
            "off_variant": data.get("off_variant") or None,
            "targets": {
                "allow": data.get("targets_allow") or [],
                "allow_variant": data.get("targets_allow_variant") or None,
                "deny": data.get("targets_deny") or [],
            },
            "rules": data.get("rules") or [],
            "default": data.get("default"),
            "prerequisites": data.get("prerequisites") or [],
            "bucket_by": data.get("bucket_by") or None,
            "tags": data.get("tags") or [],
            "kill_category": data.get("kill_category") or None,
            "lifecycle": data.get("lifecycle") or "temporary",
            "remove_after": data["remove_after"].isoformat() if data.get("remove_after") else None,
            # On the add page an unticked box says nothing: the tenant's policy may protect the flag.
            "protected": bool(data.get("protected"))
            if flag.pk is not None or data.get("protected")
            else None,
        }

    def clean_document(self) -> None:
        tenant = self.target_tenant()
        if tenant is None:
            return
        try:
            require_reason_by_policy(tenant, self.cleaned_data.get("reason"))
        except ApiError as exc:
            self.add_api_error(exc)
        document = self.document()
        if "key" in self.fields and isinstance(document["key"], str):
            existing = flag_get(tenant=tenant, key=document["key"], include_archived=True)
            if existing is not None:
                where = (
                    "an archived flag; restore it or choose another key" if existing.is_archived else "a flag"
                )
                self.add_error(
                    "key", f"key: {document['key']!r} already belongs to {where} in {tenant.slug}."
                )
                return
        try:
            self.validated = flag_validate(tenant=tenant, data=document)
        except (DefinitionError, ApiError) as exc:
            self.add_engine_error(exc)
