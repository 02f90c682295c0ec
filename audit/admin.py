"""The audit log in the admin: read only for everyone (entries are append-only), scoped by membership."""

from __future__ import annotations

import json
from typing import Any

from django.contrib import admin
from django.http import HttpRequest
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.models import AuditEntry
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin


def _shown(value: Any, limit: int = 300) -> str:
    text = json.dumps(value, ensure_ascii=False, sort_keys=True)
    return text if len(text) <= limit else text[: limit - 1] + "…"


@admin.register(AuditEntry)
class AuditEntryAdmin(TenantScopedAdmin[AuditEntry]):
    list_display = (
        "ts", "tenant", "actor", "action", "entity", "entity_key", "version", "changed_fields", "reason"
    )  # fmt: skip
    list_filter = (TenantListFilter, "entity", "action", "actor", "ts")
    search_fields = ("entity_key", "actor", "request_id", "reason")
    search_help_text = "Search by entity key, actor, request id or reason."
    date_hierarchy = "ts"
    list_select_related = ("tenant",)
    ordering = ("-ts", "-seq")
    fields = (
        "ts",
        "tenant",
        "actor",
        "action",
        "entity",
        "entity_key",
        "version",
        "reason",
        "diff_table",
        "request_id",
        "seq",
        "entry_hash",
    )
    readonly_fields = fields

    class Media:
        css = {"all": ("flags/admin/flag_admin.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    def has_change_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    def has_delete_permission(self, request: HttpRequest, obj: AuditEntry | None = None) -> bool:
        return False

    @admin.display(description="Changed")
    def changed_fields(self, obj: AuditEntry) -> str:
        paths = sorted((obj.diff or {}).keys())
        shown = ", ".join(paths[:4])
        return shown + (f" (+{len(paths) - 4} more)" if len(paths) > 4 else "")

    @admin.display(description="Changes")
    def diff_table(self, obj: AuditEntry) -> SafeString | str:
        diff = obj.diff or {}
        if not diff:
            return "no content change"
        rows = format_html_join(
            "",
            "<tr><td><code>{}</code></td><td><code>{}</code></td><td><code>{}</code></td></tr>",
            (
                (path, _shown(change.get("from")), _shown(change.get("to")))
                for path, change in sorted(diff.items())
                if isinstance(change, dict)
            ),
        )
        return format_html(
            '<table class="flagsvc-diff"><thead><tr><th>Field</th><th>Before</th><th>After</th></tr>'
            "</thead><tbody>{}</tbody></table>",
            rows,
        )
