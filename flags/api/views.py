"""`/v1/flags` (api.md, Flags). Thin: parse → service or selector → document."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import selectors, services
from flags.api.change_requests import ChangeRequestSerializer, accepted
from flags.api.serializers import (
    FlagReplaceSerializer,
    FlagSerializer,
    FlagVersionSerializer,
    RollbackSerializer,
)
from flags.approvals import ApprovalRequired
from flags.models import Flag, FlagState, FlagType, FlagVersion
from flags.staleness import stale_flags, usage_documents
from kernel.errors import FlagNotFound, Invalid
from kernel.http_caching import if_none_match_matches
from kernel.pagination import LimitOffsetPage
from kernel.timefmt import iso
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import (
    IDEMPOTENCY_KEY_HEADER,
    IF_MATCH_HEADER,
    WriteRateThrottle,
    bool_param,
    choice_param,
    etag,
    expected_version,
    idempotent,
    json_object,
    parse_version,
    text_param,
)
from tenancy.models import Tenant
from tenancy.schema import paginated


def _documents(tenant: Tenant, flags: list[Flag]) -> list[dict[str, Any]]:
    """Flag documents with their `usage` (api.md, Usage and lifecycle): three queries for the page."""
    usage = usage_documents(tenant=tenant, flags=flags)
    return [{**flag.to_document(), "usage": usage[flag.key]} for flag in flags]


def _flag_response(tenant: Tenant, flag: Flag, status_code: int = status.HTTP_200_OK) -> Response:
    return Response(_documents(tenant, [flag])[0], status=status_code, headers={"ETag": etag(flag.version)})


class FlagCollectionView(TenantAPIView):
    read_scope = "flags:read"
    write_scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(
        parameters=[
            OpenApiParameter("state", str, enum=["on", "off"]),
            OpenApiParameter("tag", str),
            OpenApiParameter("type", str, enum=list(FlagType.values)),
            OpenApiParameter("key_prefix", str),
            OpenApiParameter("q", str, description="key, name or description contains"),
            OpenApiParameter("include_archived", bool),
            OpenApiParameter("stale", bool, description="only live flags whose `usage.stale` is set"),
        ],
        responses={200: paginated(FlagSerializer, "PaginatedFlagList")},
    )
    def get(self, request: Request) -> Response:
        """List the tenant's flags: filters, search and limit/offset pages; archived ones with `include_archived`."""
        qs = selectors.flag_list(
            tenant=self.tenant,
            state=choice_param(request, "state", tuple(FlagState.values)),
            tag=text_param(request, "tag"),
            type=choice_param(request, "type", tuple(FlagType.values)),
            key_prefix=text_param(request, "key_prefix"),
            q=text_param(request, "q"),
            include_archived=bool_param(request, "include_archived"),
        )
        paginator = LimitOffsetPage()
        if bool_param(request, "stale"):
            # Staleness is evidence, not a column: judged for the filtered live flags in three queries
            # (flags.staleness), then the page of stale keys is read.
            stale = [key for key, _, _ in stale_flags(tenant=self.tenant, flags=qs.filter(archived_at=None))]
            keys = paginator.paginate_queryset(stale, request, view=self) or []
            by_key = {flag.key: flag for flag in qs.filter(key__in=keys)}
            page = [by_key[key] for key in keys if key in by_key]
        else:
            page = paginator.paginate_queryset(qs, request, view=self) or []
        return paginator.get_paginated_response(_documents(self.tenant, list(page)))

    @extend_schema(
        request=FlagSerializer,
        parameters=[IDEMPOTENCY_KEY_HEADER],
        responses={201: FlagSerializer, 200: FlagSerializer},
    )
    def post(self, request: Request) -> Response:
        """Create a flag. The same body again answers 200 with the stored flag.

        `Idempotency-Key`: the first successful response is replayed for 24 h (`Idempotent-Replayed: true`);
        the key with a different request, or while its first request is still in flight, is 409 `conflict`.
        """

        def create() -> Response:
            flag, created = services.flag_create(
                tenant=self.tenant, actor=self.actor, data=json_object(request)
            )
            response = _flag_response(
                self.tenant, flag, status.HTTP_201_CREATED if created else status.HTTP_200_OK
            )
            response["Location"] = f"/v1/flags/{flag.key}"
            return response

        return idempotent(request, self.tenant, self.principal, create)


class FlagDetailView(TenantAPIView):
    read_scope = "flags:read"
    write_scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(parameters=[OpenApiParameter("include_archived", bool)], responses={200: FlagSerializer})
    def get(self, request: Request, key: str) -> Response:
        """One flag with its `ETag`; `If-None-Match` with the current version answers 304."""
        flag = selectors.flag_get(
            tenant=self.tenant, key=key, include_archived=bool_param(request, "include_archived")
        )
        if flag is None:
            raise FlagNotFound(f"No flag {key!r} in this tenant.")
        if if_none_match_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag(flag.version)):
            return Response(status=status.HTTP_304_NOT_MODIFIED, headers={"ETag": etag(flag.version)})
        return _flag_response(self.tenant, flag)

    @extend_schema(
        request=FlagReplaceSerializer,
        parameters=[IF_MATCH_HEADER],
        responses={200: FlagSerializer, 202: ChangeRequestSerializer},
    )
    def put(self, request: Request, key: str) -> Response:
        """Replace a flag's definition; `If-Match` (or `version`) must name the current version, else 412.

        A protected flag is not changed: 202 with the change request that waits for another person's approval.
        """
        return self._update(request, key, partial=False)

    @extend_schema(
        request=FlagSerializer,
        parameters=[IF_MATCH_HEADER],
        responses={200: FlagSerializer, 202: ChangeRequestSerializer},
    )
    def patch(self, request: Request, key: str) -> Response:
        """Change some fields of a flag; `If-Match` (or `version`) must name the current version, else 412.

        A protected flag is not changed: 202 with the change request that waits for another person's approval.
        """
        return self._update(request, key, partial=True)

    def _update(self, request: Request, key: str, *, partial: bool) -> Response:
        body = json_object(request)
        try:
            flag = services.flag_update(
                tenant=self.tenant,
                key=key,
                data=body,
                actor=self.actor,
                expected_version=expected_version(request, body),
                partial=partial,
            )
        except ApprovalRequired as exc:  # a protected flag: 202 with the change request
            return accepted(exc)
        return _flag_response(self.tenant, flag)

    @extend_schema(parameters=[IF_MATCH_HEADER], responses={204: None, 202: ChangeRequestSerializer})
    def delete(self, request: Request, key: str) -> Response:
        """Archive a flag: it stops evaluating (404 `flag_not_found`) and can be restored.

        A protected flag is not archived: 202 with the change request that waits for another person's approval.
        """
        try:
            services.flag_archive(
                tenant=self.tenant, key=key, actor=self.actor, expected_version=expected_version(request)
            )
        except ApprovalRequired as exc:  # a protected flag: 202 with the change request
            return accepted(exc)
        return Response(status=status.HTTP_204_NO_CONTENT)


class FlagRestoreView(TenantAPIView):
    scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(request=None, responses={200: FlagSerializer, 202: ChangeRequestSerializer})
    def post(self, request: Request, key: str) -> Response:
        """Restore an archived flag (a protected one: 202 with the change request that waits for approval)."""
        try:
            return _flag_response(
                self.tenant, services.flag_restore(tenant=self.tenant, key=key, actor=self.actor)
            )
        except ApprovalRequired as exc:  # a protected flag: 202 with the change request
            return accepted(exc)


class FlagVersionsView(TenantAPIView):
    scope = "flags:read"

    @extend_schema(
        parameters=[OpenApiParameter("include_archived", bool)],
        responses={200: paginated(FlagVersionSerializer, "PaginatedFlagVersionList")},
    )
    def get(self, request: Request, key: str) -> Response:
        """The flag's versions, newest first, each with its full definition."""
        flag = selectors.flag_get(
            tenant=self.tenant, key=key, include_archived=bool_param(request, "include_archived")
        )
        if flag is None:
            raise FlagNotFound(f"No flag {key!r} in this tenant.")
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(
            selectors.flag_versions(tenant=self.tenant, flag=flag), request, view=self
        )
        return paginator.get_paginated_response([_version_document(v) for v in page or []])


def _version_document(version: FlagVersion) -> dict[str, object]:
    return {
        "version": version.version,
        "created_at": iso(version.created_at),
        "actor": version.actor,
        "flag": version.document,
    }


class FlagRollbackView(TenantAPIView):
    scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(request=RollbackSerializer, responses={200: FlagSerializer, 202: ChangeRequestSerializer})
    def post(self, request: Request, key: str) -> Response:
        """Make an earlier version's definition current again, as a new version."""
        body = json_object(request)
        if "version" not in body:
            raise Invalid({"version": ['Name the version to roll back to: {"version": N}.']})
        raw = body["version"]
        # Any integer names a version, and one no version has (0, -1, 10**30) "never existed": 404
        # from the service, as api.md says; only what is not a version number at all is a 422.
        is_integer = isinstance(raw, int) and not isinstance(raw, bool)
        version = raw if is_integer else parse_version(raw, "version")
        try:
            return _flag_response(
                self.tenant,
                services.flag_rollback(tenant=self.tenant, key=key, version=version, actor=self.actor),
            )
        except ApprovalRequired as exc:  # a protected flag: 202 with the change request
            return accepted(exc)
