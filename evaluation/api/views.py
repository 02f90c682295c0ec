"""`/v1/evaluate`, `/v1/evaluate/bulk`, `/v1/evaluate/preview` (api.md, Evaluation)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from flagsvc_sdk.engine.results import FLAG_NOT_FOUND, NOT_BUCKETABLE
from flagsvc_sdk.engine.results import REASONS as ENGINE_REASONS
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from evaluation import services
from tenancy.api.base import TenantAPIView
from tenancy.api.fast_lane import JsonAnswerView, fast_lane
from tenancy.api.helpers import json_object
from tenancy.models import Tenant
from tenancy.schema import StrictBody

REASONS = list(ENGINE_REASONS)


class UserSerializer(StrictBody, serializers.Serializer[Any]):
    id = serializers.CharField()
    attributes = serializers.DictField(
        required=False, allow_null=True, help_text="attribute name → JSON value"
    )


class EvaluateRequestSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField()
    user = UserSerializer()


class EvaluationDetailsSerializer(serializers.Serializer[Any]):
    bucket = serializers.FloatField(
        required=False, help_text="the user's bucket in [0, 1) where a split decided"
    )
    flag_version = serializers.IntegerField(required=False)


EVALUATION_ERROR_CODES = [NOT_BUCKETABLE]
"""The error codes of an evaluation served (an unknown flag is a 404 there)."""
BULK_ERROR_CODES = [FLAG_NOT_FOUND, NOT_BUCKETABLE]
"""The error codes of a bulk answer's entries."""


class EvaluationSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField()
    variant = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    reason = serializers.ChoiceField(REASONS)
    rule_id = serializers.CharField(allow_null=True)
    details = EvaluationDetailsSerializer()
    error_code = serializers.ChoiceField(
        EVALUATION_ERROR_CODES,
        required=False,
        help_text="with reason ERROR: the bucket_by attribute is missing",
    )


class BulkEntrySerializer(serializers.Serializer[Any]):
    """One flag's answer in a bulk evaluation: an unknown or archived key answers `reason: ERROR`."""

    variant = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    reason = serializers.ChoiceField(REASONS)
    rule_id = serializers.CharField(allow_null=True, required=False, help_text="absent for FLAG_NOT_FOUND")
    details = EvaluationDetailsSerializer(required=False, help_text="absent for FLAG_NOT_FOUND")
    error_code = serializers.ChoiceField(BULK_ERROR_CODES, required=False)


class BulkRequestSerializer(serializers.Serializer[Any]):
    user = UserSerializer()
    flag_keys = serializers.ListField(
        child=serializers.CharField(allow_blank=True),
        required=False,
        allow_null=True,
        help_text="all live flags when absent; an unknown key answers `error_code: FLAG_NOT_FOUND`",
    )


class BulkResponseSerializer(serializers.Serializer[Any]):
    flags = serializers.DictField(child=BulkEntrySerializer(), help_text="flag key → its answer")
    ruleset_version = serializers.CharField()


class PreviewRequestSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField(required=False, allow_null=True)
    user = UserSerializer(required=False, allow_null=True)
    users = UserSerializer(many=True, required=False, allow_null=True, help_text="up to 1,000")
    flag = serializers.DictField(
        required=False, allow_null=True, help_text="an unsaved flag definition to dry-run"
    )


class PreviewResultSerializer(EvaluationSerializer):
    user_id = serializers.CharField()
    trace = serializers.ListField(
        child=serializers.DictField(),
        help_text='steps tried in order: {"step": "off"|"prerequisite"|"target"|"rule"|"default", "outcome", ...}',
    )


class PreviewSummarySerializer(serializers.Serializer[Any]):
    variants = serializers.DictField(child=serializers.IntegerField(min_value=0), help_text="variant → users")
    changed = serializers.IntegerField(
        required=False, min_value=0, help_text="users whose answer differs from the stored flag's"
    )


class PreviewResponseSerializer(serializers.Serializer[Any]):
    results = PreviewResultSerializer(many=True)
    summary = PreviewSummarySerializer()


class EvaluateView(JsonAnswerView):
    scope = "evaluate"

    @staticmethod
    def answer(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
        return services.evaluate_one(tenant=tenant, flag_key=body.get("flag_key"), user=body.get("user"))

    @extend_schema(request=EvaluateRequestSerializer, responses={200: EvaluationSerializer})
    def post(self, request: Request) -> Response:
        """Evaluate one flag for one user: variant, value, reason, rule id and details (bucket, version)."""
        return Response(self.answer(self.tenant, json_object(request)))


class EvaluateBulkView(JsonAnswerView):
    scope = "evaluate"

    @staticmethod
    def answer(tenant: Tenant, body: dict[str, Any]) -> dict[str, Any]:
        return services.evaluate_bulk(tenant=tenant, user=body.get("user"), flag_keys=body.get("flag_keys"))

    @extend_schema(request=BulkRequestSerializer, responses={200: BulkResponseSerializer})
    def post(self, request: Request) -> Response:
        """Evaluate several flags (all live ones without `flag_keys`) for one user, at one ruleset version."""
        return Response(self.answer(self.tenant, json_object(request)))


class EvaluatePreviewView(TenantAPIView):
    scope = "flags:read"

    @extend_schema(request=PreviewRequestSerializer, responses={200: PreviewResponseSerializer})
    def post(self, request: Request) -> Response:
        """Dry-run: traces for one user, or variant counts and changes against the stored flag for up to 1,000 users; stores nothing."""
        return Response(services.preview(tenant=self.tenant, body=json_object(request)))


evaluate_view = fast_lane(EvaluateView)
evaluate_bulk_view = fast_lane(EvaluateBulkView)
"""The two hot routes: DRF views whose happy path skips DRF (`tenancy.api.fast_lane`)."""


class UsageCountSerializer(StrictBody, serializers.Serializer[Any]):
    flag_key = serializers.CharField(max_length=128)
    variant = serializers.CharField(max_length=128, allow_null=True)
    reason = serializers.ChoiceField(REASONS)
    hour = serializers.DateTimeField(help_text="the start of a UTC hour")
    n = serializers.IntegerField(min_value=1, max_value=1_000_000_000)


class UsageReportSerializer(StrictBody, serializers.Serializer[Any]):
    batch_id = serializers.CharField(max_length=128, help_text="unique per batch: a repeat is not counted")
    counts = UsageCountSerializer(many=True, help_text="at most 10,000")


class UsageAcceptedSerializer(serializers.Serializer[Any]):
    batch_id = serializers.CharField()
    duplicate = serializers.BooleanField(help_text="true: this batch id was counted before, nothing added")
    ignored_flag_keys = serializers.ListField(
        child=serializers.CharField(), help_text="keys that name no flag of this tenant: not counted"
    )


class ExposureSerializer(StrictBody, serializers.Serializer[Any]):
    flag_key = serializers.CharField(max_length=128)
    variant = serializers.CharField(max_length=128)
    user_id = serializers.CharField(max_length=256)
    ts = serializers.DateTimeField(help_text="when it was served; within the last 7 days")


class ExposureReportSerializer(StrictBody, serializers.Serializer[Any]):
    batch_id = serializers.CharField(
        max_length=128, help_text="unique per batch: a resent batch is not forwarded twice"
    )
    exposures = ExposureSerializer(many=True, help_text="1 to 1,000")


class ExposuresAcceptedSerializer(serializers.Serializer[Any]):
    batch_id = serializers.CharField()
    accepted = serializers.IntegerField(help_text="exposures forwarded to the `flag.exposure` webhooks")
    ignored_flag_keys = serializers.ListField(
        child=serializers.CharField(), help_text="keys that name no flag of this tenant: dropped"
    )


class ExposureReportView(TenantAPIView):
    scope = "evaluate"

    @extend_schema(request=ExposureReportSerializer, responses={202: ExposuresAcceptedSerializer})
    def post(self, request: Request) -> Response:
        """An SDK's exposures (batched), sent on as `flag.exposure` deliveries to the webhooks that name
        that type; user ids are kept only until each delivery settles."""
        answer = services.exposures_report(tenant=self.tenant, body=json_object(request))
        return Response(answer, status=202)


class UsageReportView(TenantAPIView):
    scope = "evaluate"

    @extend_schema(request=UsageReportSerializer, responses={202: UsageAcceptedSerializer})
    def post(self, request: Request) -> Response:
        """An SDK's evaluation counts (batched); a batch id seen before is not counted twice."""
        answer = services.usage_report(tenant=self.tenant, body=json_object(request))
        return Response(answer, status=202)
