"""The admin's change requests (four eyes): a list, and a review page per request with its diff and the
approve / reject / apply buttons for the people allowed to press them. Every button calls the services of
`flags.change_requests`, the same ones the API calls.

Who may do what (per tenant membership): viewers read; editors and owners approve (not their own request),
reject and apply; the author may always withdraw (reject) their own.
"""

from __future__ import annotations

from datetime import datetime
from typing import Any

from django.contrib import admin, messages
from django.contrib.admin.utils import unquote
from django.core.exceptions import PermissionDenied
from django.http import HttpRequest, HttpResponse, HttpResponseNotAllowed, HttpResponseRedirect
from django.template.response import TemplateResponse
from django.urls import URLPattern, path, reverse
from django.utils.html import format_html, format_html_join
from django.utils.safestring import SafeString

from audit.diff import document_diff
from flags import change_requests
from flags.admin.history import Change, flag_changes
from flags.admin.links import links_for
from flags.admin.vocabulary import format_datetime
from flags.approvals import ApprovalRequired
from flags.models import OPEN_STATUSES, ChangeRequest, ChangeRequestStatus, Flag
from kernel.admin_writes import actor_of
from kernel.errors import as_api_error
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin
from tenancy.models import Role

KIND_WORDS = {
    "update": "Change the definition",
    "archive": "Archive the flag",
    "restore": "Restore the flag",
    "rollback": "Roll back",
}


GOVERNANCE_WORDS = {
    "protected": "Protected",
    "kill_category": "Kill switch category",
    "lifecycle": "Lifecycle",
    "remove_after": "Remove after",
    "archived": "Archived",
}


def proposal_changes(cr: ChangeRequest) -> list[Change]:
    """What applying the request changes, in words (the history's per-part diff), then the parts
    outside the definition that a request can change too (protected, kill category, archived)."""
    changes = flag_changes(cr.base, cr.proposed, links_for(cr.tenant_id))
    for field, words in GOVERNANCE_WORDS.items():
        before, after = cr.base.get(field), cr.proposed.get(field)
        if before != after and field in cr.proposed:
            changes.append(Change("changed", words, _governance(before), _governance(after)))
    return changes


def _governance(value: Any) -> str:
    if isinstance(value, bool):
        return "yes" if value else "no"
    return str(value) if value not in (None, "") else "none"


def _shown_time(value: Any) -> str:
    """An approval's ISO time as the admin shows every time (`format_datetime`)."""
    try:
        return format_datetime(datetime.fromisoformat(str(value).replace("Z", "+00:00")))
    except ValueError:
        return str(value)


def review_url(cr: ChangeRequest) -> str:
    return reverse("admin:flags_changerequest_change", args=[cr.pk])


def opened_message(exc: ApprovalRequired) -> SafeString:
    """What a person sees when a write of theirs was stopped by the gate."""
    cr = exc.change_request
    verb = "updated" if exc.reused else "opened"
    return format_html(
        'Flag {} is protected: nothing was changed. <a href="{}">Change request #{}</a> {}; '
        "it needs another person's approval.",
        cr.flag_key,
        review_url(cr),
        cr.pk,
        verb,
    )


def protected_notice(flag: Flag) -> SafeString:
    """The change form's banner for a protected flag, with links to its open change requests."""
    open_requests = list(
        ChangeRequest.objects.for_tenant(flag.tenant_id)
        .filter(flag=flag, status__in=OPEN_STATUSES)
        .order_by("id")
        .values_list("pk", "author", "status")[:10]
    )
    notice = format_html(
        "{}",
        "Protected: changes need approval. Saving opens a change request that another person must "
        "approve before it is applied.",
    )
    if not open_requests:
        return notice
    links = format_html_join(
        ", ",
        '<a href="{}">#{}</a> by {} ({})',
        (
            (reverse("admin:flags_changerequest_change", args=[pk]), pk, author, status)
            for pk, author, status in open_requests
        ),
    )
    return format_html("{} Open change requests: {}.", notice, links)


@admin.register(ChangeRequest)
class ChangeRequestAdmin(TenantScopedAdmin[ChangeRequest]):
    list_display = ("number", "flag_key", "tenant", "status_badge", "what", "author", "approved_by", "opened")
    list_display_links = ("number", "flag_key")
    list_filter = ("status", TenantListFilter)
    search_fields = ("flag_key", "author")
    search_help_text = "Search by flag key or author."
    list_select_related = ("tenant",)
    ordering = ("-id",)

    class Media:
        css = {"all": ("flags/admin/flag_admin.css",)}

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False  # a request is opened by changing a protected flag

    def has_change_permission(self, request: HttpRequest, obj: ChangeRequest | None = None) -> bool:
        return False  # edited only through the review page's buttons (and the API)

    @admin.display(description="#", ordering="id")
    def number(self, obj: ChangeRequest) -> str:
        return f"#{obj.pk}"

    @admin.display(description="Status", ordering="status")
    def status_badge(self, obj: ChangeRequest) -> SafeString:
        return format_html('<span class="flagsvc-cr flagsvc-cr-{}">{}</span>', obj.status, obj.status)

    @admin.display(description="Change")
    def what(self, obj: ChangeRequest) -> str:
        if obj.kind == "rollback":
            return f"Roll back to v{obj.rollback_version}"
        if obj.kind == "update":
            changed = sorted(document_diff(obj.base, obj.proposed))
            fields = sorted({path.split(".")[0].split("[")[0] for path in changed})
            return "Change " + ", ".join(fields[:4]) + (" …" if len(fields) > 4 else "")
        return KIND_WORDS.get(obj.kind, obj.kind)

    @admin.display(description="Approved by")
    def approved_by(self, obj: ChangeRequest) -> str:
        return ", ".join(str(a.get("actor")) for a in obj.approvals) or "—"

    @admin.display(description="Opened", ordering="created_at")
    def opened(self, obj: ChangeRequest) -> str:
        return format_datetime(obj.created_at)

    # --- the review page ----------------------------------------------------------------------

    def get_urls(self) -> list[URLPattern]:
        def wrap(view: Any) -> Any:
            return self.admin_site.admin_view(view)

        return [
            path("<path:object_id>/decide/", wrap(self.decide_view), name="flags_changerequest_decide"),
            *super().get_urls(),
        ]

    def change_view(
        self,
        request: HttpRequest,
        object_id: str,
        form_url: str = "",
        extra_context: dict[str, Any] | None = None,
    ) -> HttpResponse:
        cr = self.get_object(request, unquote(object_id))
        if not self.has_view_permission(request, cr):
            raise PermissionDenied
        actor = actor_of(request)
        editor = self.access(request).can(cr.tenant_id, Role.EDITOR)
        is_open = cr.status in (ChangeRequestStatus.PENDING, ChangeRequestStatus.APPROVED)
        approved_by_me = any(a.get("actor") == actor for a in cr.approvals)
        context = {
            **self.admin_site.each_context(request),
            "title": f"Change request #{cr.pk}",
            "subtitle": None,
            "opts": self.opts,
            "original": cr,
            "kind_words": KIND_WORDS.get(cr.kind, cr.kind),
            "changes": proposal_changes(cr),
            "is_author": cr.author == actor,
            "can_approve": editor and is_open and cr.author != actor and not approved_by_me,
            "can_reject": is_open and (editor or cr.author == actor),
            "can_apply": editor and cr.status == ChangeRequestStatus.APPROVED,
            "flag_url": reverse("admin:flags_flag_change", args=[cr.flag_id]),
            "opened_at": format_datetime(cr.created_at),
            "approvals": [(str(a.get("actor")), _shown_time(a.get("at"))) for a in cr.approvals],
            "has_view_permission": True,
        }
        return TemplateResponse(request, "admin/flags/changerequest/review.html", context)

    def decide_view(self, request: HttpRequest, object_id: str) -> HttpResponse:
        if request.method != "POST":
            return HttpResponseNotAllowed(["POST"])
        cr = self.get_object(request, unquote(object_id))
        decision = request.POST.get("decision", "")
        actor = actor_of(request)
        editor = self.access(request).can(cr.tenant_id, Role.EDITOR)
        if decision not in ("approve", "reject", "apply") or not (editor or decision == "reject"):
            raise PermissionDenied
        try:
            if decision == "approve":
                change_requests.change_request_approve(tenant=cr.tenant, cr_id=cr.pk, actor=actor)
                messages.success(request, f"You approved change request #{cr.pk}; it can be applied now.")
            elif decision == "reject":
                change_requests.change_request_reject(
                    tenant=cr.tenant, cr_id=cr.pk, actor=actor, may_reject_others=editor
                )
                messages.success(request, f"Change request #{cr.pk} was rejected; the flag is unchanged.")
            else:
                _, flag = change_requests.change_request_apply(tenant=cr.tenant, cr_id=cr.pk, actor=actor)
                messages.success(
                    request, f"Change request #{cr.pk} was applied: {flag.key} is now version {flag.version}."
                )
        except Exception as exc:
            err = as_api_error(exc)
            if err is None:
                raise
            messages.error(request, f"Nothing was changed: {err.message}")
        return HttpResponseRedirect(review_url(cr))
