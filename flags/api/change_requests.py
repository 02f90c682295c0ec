"""`/v1/change-requests` (api.md, Safe change: approvals). Thin: parse → `flags.change_requests` → document.

A write to a protected flag answers 202 with the change request (`accepted`, used by `flags.api.views`).
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import change_requests
from flags.approvals import ApprovalRequired, change_request_document
from flags.models import ChangeRequestStatus
from kernel.errors import InsufficientScope
from kernel.pagination import LimitOffsetPage
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import WriteRateThrottle, choice_param, json_object, text_param
from tenancy.schema import paginated


class ChangeRequestSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    flag_key = serializers.CharField()
    kind = serializers.ChoiceField(["update", "archive", "restore", "rollback"])
    status = serializers.ChoiceField(list(ChangeRequestStatus.values))
    base_version = serializers.IntegerField()
    proposed = serializers.JSONField(
        help_text="the flag's fields after the change, with protected and archived"
    )
    diff = serializers.JSONField(help_text="changed field path → {from, to}, from the base version")
    author = serializers.CharField()
    approvals = serializers.JSONField(help_text='[{"actor", "at"}]')
    rollback_version = serializers.IntegerField(allow_null=True)
    decided_by = serializers.CharField(allow_null=True, help_text="who rejected or applied it")
    applied_version = serializers.IntegerField(allow_null=True)
    created_at = serializers.DateTimeField()
    updated_at = serializers.DateTimeField()


class ChangeRequestEditSerializer(serializers.Serializer[Any]):
    proposed = serializers.JSONField(help_text="the flag fields to change in the proposal (a partial flag)")


def accepted(exc: ApprovalRequired) -> Response:
    """A write the gate stopped: 202 with the change request that holds it (Location: the request)."""
    cr = exc.change_request
    return Response(
        change_request_document(cr),
        status=status.HTTP_202_ACCEPTED,
        headers={"Location": f"/v1/change-requests/{cr.pk}"},
    )


class ChangeRequestCollectionView(TenantAPIView):
    scope = "flags:read"

    @extend_schema(
        parameters=[
            OpenApiParameter("status", str, enum=list(ChangeRequestStatus.values)),
            OpenApiParameter("flag", str, description="the flag's key (alias: flag_key)"),
        ],
        responses={200: paginated(ChangeRequestSerializer, "PaginatedChangeRequestList")},
    )
    def get(self, request: Request) -> Response:
        """The tenant's change requests, newest first; filter by `status` and `flag`."""
        qs = change_requests.change_request_list(
            tenant=self.tenant,
            status=choice_param(request, "status", tuple(ChangeRequestStatus.values)),
            flag_key=text_param(request, "flag", 128) or text_param(request, "flag_key", 128),
        )
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response([change_request_document(cr) for cr in page])


class ChangeRequestDetailView(TenantAPIView):
    read_scope = "flags:read"
    write_scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(responses={200: ChangeRequestSerializer})
    def get(self, request: Request, cr_id: str) -> Response:
        """One change request with its proposal, diff and approvals."""
        cr = change_requests.change_request_get(tenant=self.tenant, cr_id=int(cr_id))
        return Response(change_request_document(cr))

    @extend_schema(request=ChangeRequestEditSerializer, responses={200: ChangeRequestSerializer})
    def patch(self, request: Request, cr_id: str) -> Response:
        """The author edits the proposal (`{"proposed": {...fields}}`): validated again, approvals cleared."""
        body = json_object(request)
        cr = change_requests.change_request_edit(
            tenant=self.tenant, cr_id=int(cr_id), proposed=body.get("proposed"), actor=self.actor
        )
        return Response(change_request_document(cr))


class ChangeRequestApproveView(TenantAPIView):
    scope = "flags:approve"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(request=None, responses={200: ChangeRequestSerializer})
    def post(self, request: Request, cr_id: str) -> Response:
        """Approve another actor's change request (the author → 403 `self_approval`)."""
        cr = change_requests.change_request_approve(tenant=self.tenant, cr_id=int(cr_id), actor=self.actor)
        return Response(change_request_document(cr))


class ChangeRequestRejectView(TenantAPIView):
    scope = "flags:read"  # the real check is read_change_reason: flags:approve, or flags:write for the author
    throttle_classes = (WriteRateThrottle,)

    def read_change_reason(self, request: Request) -> None:
        """A write whatever its nominal scope: the scope check first, then `X-Change-Reason` as on
        every write (kept on the audit entry, required where the tenant requires reasons)."""
        if not self.principal.has_scope("flags:approve") and not self.principal.has_scope("flags:write"):
            raise InsufficientScope(
                "This route needs the `flags:approve` scope (or `flags:write` for the author)."
            )
        self.record_change_reason(request)

    @extend_schema(request=None, responses={200: ChangeRequestSerializer})
    def post(self, request: Request, cr_id: str) -> Response:
        """Reject a change request (`flags:approve`); its author may withdraw it with `flags:write`."""
        may_approve = self.principal.has_scope("flags:approve")
        cr = change_requests.change_request_reject(
            tenant=self.tenant, cr_id=int(cr_id), actor=self.actor, may_reject_others=may_approve
        )
        return Response(change_request_document(cr))


class ChangeRequestApplyView(TenantAPIView):
    scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(
        request=None,
        responses={
            200: ChangeRequestSerializer,
            412: OpenApiResponse(
                description="`precondition_failed`: the flag moved since the request was opened."
            ),
        },
    )
    def post(self, request: Request, cr_id: str) -> Response:
        """Apply an approved change request as a new version of the flag (a moved base version → 412)."""
        cr, flag = change_requests.change_request_apply(
            tenant=self.tenant, cr_id=int(cr_id), actor=self.actor
        )
        return Response(
            {**change_request_document(cr), "flag": flag.to_document()},
            headers={"ETag": f'"{flag.version}"'},
        )
