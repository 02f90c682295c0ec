"""`POST /ofrep/v1/evaluate/flags/{key}` and `POST /ofrep/v1/evaluate/flags` (api.md, OFREP).

Authentication, tenant and scope are `TenantAPIView`'s, as on `/v1`. The body is read here, through
the one JSON reader, rather than by DRF's parser: OFREP wants a 400 `PARSE_ERROR` in its own shape for
a body that is not JSON (or not `application/json`), where `/v1` answers 400/415 in ours.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.types import OpenApiTypes
from drf_spectacular.utils import OpenApiParameter, OpenApiResponse, extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from evaluation.ofrep import OfrepProblem, bulk_etag, ofrep_evaluate_flag, ofrep_evaluate_flags, read_body
from kernel.errors import MalformedRequest, api_exception_handler
from kernel.http_caching import if_none_match_matches
from tenancy.api.base import TenantAPIView
from tenancy.api.throttles import OfrepRateThrottle

OPENFEATURE_REASONS = ["STATIC", "DEFAULT", "TARGETING_MATCH", "SPLIT", "DISABLED", "ERROR", "UNKNOWN"]
OFREP_ERROR_CODES = ["PARSE_ERROR", "TARGETING_KEY_MISSING", "INVALID_CONTEXT", "GENERAL"]
FLAG_NOT_FOUND_CODE = ["FLAG_NOT_FOUND"]
"""Named in SPECTACULAR_SETTINGS["ENUM_NAME_OVERRIDES"], so the schema's enums have stable names."""


def ofrep_exception_handler(exc: Exception, context: dict[str, Any]) -> Response:
    """OFREP's shape for every 400 (api.md: 400 is OFREP's, 401 / 403 / 413 / 429 / 503 are `/v1`'s).

    A 400 our layers raise before the view reads the body (no `X-Tenant-ID`) is `INVALID_CONTEXT`,
    one of the three codes api.md names for OFREP's 400 (the tenant is part of what an evaluation is
    asked in); its details name the header to send.
    """
    if isinstance(exc, OfrepProblem):
        return Response(exc.body(), status=exc.status)
    if isinstance(exc, MalformedRequest):
        return Response(OfrepProblem(exc.status, "INVALID_CONTEXT", exc.message).body(), status=exc.status)
    return api_exception_handler(exc, context)


class OfrepContextSerializer(serializers.Serializer[Any]):
    """The evaluation context: `targetingKey` is the user id (required: 400 `TARGETING_KEY_MISSING`
    without it); every other field is an attribute."""

    targetingKey = serializers.CharField()


class OfrepEvaluationSerializer(serializers.Serializer[Any]):
    # DRF's metaclass takes declared fields out of the class, so this does not shadow `Serializer.context`.
    context = OfrepContextSerializer(  # type: ignore[assignment]
        help_text='`{"targetingKey": "<user id>", ...attributes}`: every field but `targetingKey` is an attribute',
    )


class OfrepSuccessSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    value = serializers.JSONField(help_text="the variant's value: boolean, string, number, object or array")
    variant = serializers.CharField()
    reason = serializers.ChoiceField(OPENFEATURE_REASONS, help_text="rules.md, Reasons mapped to OpenFeature")
    metadata = serializers.DictField(
        help_text="primitives only: `reason` (ours), `flag_version`, and where known `bucket`, `rule_id`, "
        "`target`, `prerequisite`, `error_code`"
    )


class OfrepFailureSerializer(serializers.Serializer[Any]):
    key = serializers.CharField(required=False)
    errorCode = serializers.ChoiceField(OFREP_ERROR_CODES)
    errorDetails = serializers.CharField()


class OfrepFlagNotFoundSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    errorCode = serializers.ChoiceField(FLAG_NOT_FOUND_CODE)
    errorDetails = serializers.CharField()


class OfrepBulkSerializer(serializers.Serializer[Any]):
    flags = OfrepSuccessSerializer(many=True, help_text="every live flag, ordered by key")


_BAD_REQUEST = OpenApiResponse(
    OfrepFailureSerializer,
    description="OFREP's shape: `PARSE_ERROR` (not JSON, or not `application/json`), `INVALID_CONTEXT`, "
    "`TARGETING_KEY_MISSING` (`INVALID_CONTEXT` also when `X-Tenant-ID` is missing)",
)


class OfrepView(TenantAPIView):
    scope = "evaluate"
    throttle_classes = (OfrepRateThrottle,)
    reads_body_through_drf = False  # `body` reads it, with OFREP's PARSE_ERROR / INVALID_CONTEXT

    def get_exception_handler(self) -> Any:
        return ofrep_exception_handler

    def body(self, request: Request, key: str | None = None) -> dict[str, Any]:
        django_request = request._request
        return read_body(
            django_request.body,
            django_request.content_type or "",
            django_request.content_params or {},
            key=key,
        )


class OfrepFlagView(OfrepView):
    @extend_schema(
        operation_id="ofrep_evaluate_flag",
        request=OfrepEvaluationSerializer,
        responses={200: OfrepSuccessSerializer, 400: _BAD_REQUEST, 404: OfrepFlagNotFoundSerializer},
    )
    def post(self, request: Request, key: str) -> Response:
        """OFREP: evaluate one flag for the context's `targetingKey` (the user id) and attributes."""
        return Response(ofrep_evaluate_flag(tenant=self.tenant, key=key, body=self.body(request, key)))


class OfrepFlagsView(OfrepView):
    @extend_schema(
        operation_id="ofrep_evaluate_flags",
        request=OfrepEvaluationSerializer,
        parameters=[
            OpenApiParameter(
                "If-None-Match",
                OpenApiTypes.STR,
                OpenApiParameter.HEADER,
                description="the `ETag` of the answer you hold; unchanged answers 304 without a body",
            ),
            OpenApiParameter("ETag", OpenApiTypes.STR, OpenApiParameter.HEADER, response=[200, 304]),
        ],
        responses={
            200: OfrepBulkSerializer,
            304: OpenApiResponse(description="Not modified: the answers are those of the `ETag` you sent."),
            400: _BAD_REQUEST,
        },
    )
    def post(self, request: Request) -> Response:
        """OFREP: evaluate every live flag for the context; `ETag` / `If-None-Match` for polling."""
        document = ofrep_evaluate_flags(tenant=self.tenant, body=self.body(request))
        etag = bulk_etag(document)
        if if_none_match_matches(request.META.get("HTTP_IF_NONE_MATCH"), etag):
            return Response(status=304, headers={"ETag": etag})
        return Response(document, headers={"ETag": etag})
