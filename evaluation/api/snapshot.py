"""`GET /v1/snapshot` and `GET /v1/snapshot/keys` (api.md, Snapshot; ADR 0014)."""

from __future__ import annotations

from typing import Any

from django.http import HttpResponse
from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from evaluation.snapshot import SNAPSHOTS, SignedSnapshot
from evaluation.snapshot_keys import serving_keyring
from kernel.http_caching import accepts_gzip, if_none_match_matches
from tenancy.api.base import TenantAPIView

SIGNATURE_HEADER = "X-Snapshot-Signature"


class SnapshotSerializer(serializers.Serializer[Any]):
    tenant = serializers.CharField()
    ruleset_version = serializers.CharField(help_text="the version these documents are at; also the `ETag`")
    generated_at = serializers.DateTimeField(help_text="when this ruleset version was committed")
    flags = serializers.ListField(
        child=serializers.DictField(), help_text="every live flag as the engine compiles it, ordered by key"
    )
    segments = serializers.ListField(
        child=serializers.DictField(), help_text="every segment as the engine compiles it, ordered by key"
    )


class SnapshotKeySerializer(serializers.Serializer[Any]):
    kid = serializers.CharField()
    alg = serializers.ChoiceField(["Ed25519"])
    public_key = serializers.CharField(help_text="base64url of the raw 32-byte Ed25519 public key")


class SnapshotKeysSerializer(serializers.Serializer[Any]):
    keys = SnapshotKeySerializer(many=True, help_text="the signing key first, then any other published")


def _snapshot_headers(snapshot: SignedSnapshot) -> dict[str, str]:
    return {
        "ETag": snapshot.etag,
        SIGNATURE_HEADER: snapshot.signature,
        # The route serves every tenant at one URL, by header: no shared cache may keep it, and a
        # client revalidates with If-None-Match (a 304 is a version check and no body).
        "Cache-Control": "private, no-cache",
        "Vary": "Accept-Encoding, Authorization, X-Tenant-ID",
    }


ERROR_REF = {"$ref": "#/components/schemas/Error"}
_UNSIGNED = (
    "`snapshot_signing_key_missing` (no signing key configured) or `snapshot_signing_key_invalid` "
    "(a malformed key setting); `unavailable` (the database is down and no snapshot was built yet)."
)


class SnapshotView(TenantAPIView):
    scope = "evaluate"

    @extend_schema(
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="the `ETag` you hold; the current one answers 304 without a body",
            ),
            OpenApiParameter(
                SIGNATURE_HEADER,
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description="`ed25519 keyid=<kid> sig=<base64url>`: Ed25519 over the exact uncompressed "
                "body bytes; the keys are at `/v1/snapshot/keys`",
            ),
            OpenApiParameter(
                "ETag",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                response=[200, 304],
                description='`"<ruleset_version>"`',
            ),
            OpenApiParameter(
                "Accept-Encoding",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="`gzip` to receive the body gzipped (the signature covers the uncompressed bytes)",
            ),
        ],
        responses={
            200: OpenApiResponse(SnapshotSerializer, description="the signed snapshot"),
            304: OpenApiResponse(description="Not modified: `If-None-Match` names the current `ETag`."),
            503: OpenApiResponse(ERROR_REF, description=_UNSIGNED),
        },
    )
    def get(self, request: Request) -> HttpResponse:
        """The tenant's live flags and segments in the engine's input form, signed (Ed25519), for local evaluation."""
        snapshot = SNAPSHOTS.current(self.tenant)
        headers = _snapshot_headers(snapshot)
        if if_none_match_matches(request.META.get("HTTP_IF_NONE_MATCH"), snapshot.etag):
            not_modified = HttpResponse(status=304, headers=headers)
            del not_modified["Content-Type"]  # no body, so no type (RFC 9110, 15.4.5)
            return not_modified
        if accepts_gzip(request.META.get("HTTP_ACCEPT_ENCODING")):
            headers["Content-Encoding"] = "gzip"
            return HttpResponse(snapshot.gzipped(), content_type="application/json", headers=headers)
        return HttpResponse(snapshot.body, content_type="application/json", headers=headers)


class SnapshotKeysView(TenantAPIView):
    scope = "evaluate"

    @extend_schema(
        responses={
            200: SnapshotKeysSerializer,
            503: OpenApiResponse(ERROR_REF, description=_UNSIGNED),
        }
    )
    def get(self, request: Request) -> Response:
        """The public keys that verify snapshot signatures (`X-Snapshot-Signature: ed25519 keyid=... sig=...`)."""
        keyring = serving_keyring()
        keyring.require_signer()
        return Response(keyring.keys_document(), headers={"Cache-Control": "private, max-age=60"})
