"""Webhooks and their deliveries in the admin: for the owners of the tenant (and superusers).

Every write goes through `webhooks.services`, as the API's do. A signing secret (on create, and from the
"Rotate the signing secret" action) is shown once, in the response to that request, and stored nowhere
but encrypted in the database.
"""

from __future__ import annotations

import re
from typing import Any

from django import forms
from django.contrib import admin, messages
from django.db.models import QuerySet
from django.http import HttpRequest, HttpResponse
from django.template.response import TemplateResponse

from kernel.admin_writes import ServiceForm, ServiceWriteAdmin
from kernel.errors import ApiError
from tenancy.admin_scoping import TenantListFilter, TenantScopedAdmin
from tenancy.models import Role
from webhooks import services
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.patterns import EVENT_TYPES

_ISSUED_SECRET = "_flagsvc_webhook_secret"


class WebhookForm(ServiceForm):
    url = forms.CharField(
        label="URL",
        max_length=2000,
        widget=forms.URLInput(attrs={"size": 80}),
        help_text="http(s); not on a loopback, private or link-local address unless the operator allows it.",
    )
    events = forms.CharField(
        widget=forms.TextInput(attrs={"size": 80}),
        help_text="Comma-separated: event types, '<entity>.*' or '*'. Types: " + ", ".join(EVENT_TYPES) + ".",
    )

    class Meta:
        model = Webhook
        fields = ("tenant", "url", "events", "active", "description")

    def __init__(self, *args: Any, **kwargs: Any) -> None:
        super().__init__(*args, **kwargs)
        if self.instance.pk is not None:
            self.initial["events"] = ", ".join(self.instance.events)

    def clean_events(self) -> list[str]:
        return [part for part in re.split(r"[,\s]+", self.cleaned_data["events"]) if part]


@admin.register(Webhook)
class WebhookAdmin(ServiceWriteAdmin[Webhook], TenantScopedAdmin[Webhook]):
    form = WebhookForm
    list_display = ("url", "tenant", "event_list", "active", "description")
    list_filter = (TenantListFilter, "active")
    search_fields = ("url", "description")
    list_select_related = ("tenant",)
    autocomplete_fields = ("tenant",)
    ordering = ("tenant__slug", "pk")
    actions = ("rotate_secret",)
    view_role = Role.OWNER
    edit_role = Role.OWNER
    allow_delete = True

    def get_readonly_fields(self, request: HttpRequest, obj: Webhook | None = None) -> tuple[str, ...]:
        return ("tenant", "secret_rotated_at", "created_at") if obj is not None else ()

    def get_fields(self, request: HttpRequest, obj: Webhook | None = None) -> Any:
        fields = ("tenant", "url", "events", "active", "description")
        return fields if obj is None else (*fields, "secret_rotated_at", "created_at")

    @admin.display(description="Events")
    def event_list(self, obj: Webhook) -> str:
        return ", ".join(obj.events)

    def write(self, request: HttpRequest, form: WebhookForm, change: bool) -> Webhook:
        data = {k: v for k, v in form.cleaned_data.items() if k != "tenant"}
        if change:
            return services.webhook_update(
                tenant=form.instance.tenant, webhook_id=form.instance.pk, data=data
            )
        created = services.webhook_create(tenant=form.cleaned_data["tenant"], data=data)
        setattr(request, _ISSUED_SECRET, created.secret)
        return created.webhook

    def remove(self, request: HttpRequest, obj: Webhook) -> None:
        services.webhook_delete(tenant=obj.tenant, webhook_id=obj.pk)

    def response_add(
        self, request: HttpRequest, obj: Webhook, post_url_continue: str | None = None
    ) -> HttpResponse:
        return self._secret_page(request, obj, getattr(request, _ISSUED_SECRET, ""), "created")

    @admin.action(description="Rotate the signing secret (shown once)", permissions=["change"])
    def rotate_secret(self, request: HttpRequest, queryset: QuerySet[Webhook]) -> HttpResponse | None:
        chosen = list(queryset[:2])
        if len(chosen) != 1:
            self.message_user(
                request, "Select one webhook: its new secret is shown on the next page.", messages.ERROR
            )
            return None
        (webhook,) = chosen
        if not self.access(request).can(webhook.tenant_id, Role.OWNER):
            return None
        rotated = services.webhook_rotate_secret(tenant=webhook.tenant, webhook_id=webhook.pk)
        return self._secret_page(request, rotated.webhook, rotated.secret, "rotated")

    def _secret_page(self, request: HttpRequest, webhook: Webhook, secret: str, what: str) -> HttpResponse:
        """The secret in this response only: no redirect, so it never sits in a cookie or session."""
        context = {
            **self.admin_site.each_context(request),
            "title": f"Signing secret of webhook {webhook.pk} {what}",
            "subtitle": None,
            "opts": self.opts,
            "webhook": webhook,
            "secret": secret,
        }
        response = TemplateResponse(request, "admin/webhooks/webhook/secret_once.html", context)
        response["Cache-Control"] = "no-store"
        return response


@admin.register(WebhookDelivery)
class WebhookDeliveryAdmin(TenantScopedAdmin[WebhookDelivery]):
    """The delivery log: read-only, with one action, redelivering failed deliveries."""

    list_display = (
        "id",
        "webhook_ref",
        "event_type",
        "status",
        "attempts",
        "code",
        "error",
        "next_attempt_at",
    )
    list_filter = (TenantListFilter, "status", "event_type")
    list_select_related = ("tenant", "webhook")
    search_fields = ("event_type", "=event_id")
    ordering = ("-pk",)
    actions = ("redeliver",)
    view_role = Role.OWNER
    edit_role = Role.OWNER
    readonly_fields = (
        "tenant",
        "webhook",
        "event_id",
        "event_type",
        "payload",
        "status",
        "attempts",
        "last_status_code",
        "last_error",
        "duration_ms",
        "next_attempt_at",
        "give_up_after",
        "created_at",
        "last_attempt_at",
    )
    exclude = ("lease_token",)

    def has_add_permission(self, request: HttpRequest) -> bool:
        return False

    @admin.display(description="Code", ordering="last_status_code")
    def code(self, obj: WebhookDelivery) -> int | None:
        return obj.last_status_code

    @admin.display(description="Last error")
    def error(self, obj: WebhookDelivery) -> str:
        text = obj.last_error
        return text if len(text) <= 60 else text[:59] + "…"

    @admin.display(description="Webhook", ordering="webhook_id")
    def webhook_ref(self, obj: WebhookDelivery) -> str:
        return f"#{obj.webhook_id}"

    def has_change_permission(self, request: HttpRequest, obj: WebhookDelivery | None = None) -> bool:
        """Deliveries are never edited; the redeliver action needs this for the list (obj=None)."""
        return obj is None and super().has_change_permission(request)

    @admin.action(description="Redeliver the selected failed deliveries", permissions=["change"])
    def redeliver(self, request: HttpRequest, queryset: QuerySet[WebhookDelivery]) -> None:
        access = self.access(request)
        queued, skipped = 0, 0
        for delivery in queryset.select_related("tenant"):
            if delivery.status != DeliveryStatus.FAILED or not access.can(delivery.tenant_id, Role.OWNER):
                skipped += 1
                continue
            try:
                services.delivery_redeliver(
                    tenant=delivery.tenant, webhook_id=delivery.webhook_id, delivery_id=delivery.pk
                )
                queued += 1
            except ApiError:
                skipped += 1
        self.message_user(
            request,
            f"Queued {queued} delivery(ies) again; {skipped} skipped (only failed ones are redelivered).",
        )
