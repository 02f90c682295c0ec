"""`/v1/evaluate`, `/v1/evaluate/bulk`, `/v1/evaluate/preview` (api.md, Evaluation)."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema
from rest_framework import serializers
from rest_framework.request import Request
from rest_framework.response import Response

from evaluation import services
from tenancy.api.base import TenantAPIView
from tenancy.api.fast_lane import JsonAnswerView, fast_lane
from tenancy.api.helpers import json_object
from tenancy.models import Tenant


class UserSerializer(serializers.Serializer[Any]):
    id = serializers.CharField()
    attributes = serializers.DictField(required=False)


class EvaluateRequestSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField()
    user = UserSerializer()


class EvaluationSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField()
    variant = serializers.CharField(allow_null=True)
    value = serializers.JSONField(allow_null=True)
    reason = serializers.ChoiceField(
        ["OFF", "PREREQUISITE_FAILED", "TARGET_MATCH", "RULE_MATCH", "DEFAULT", "PERCENTAGE_ROLLOUT", "ERROR"]
    )
    rule_id = serializers.CharField(allow_null=True)
    details = serializers.DictField()


class BulkRequestSerializer(serializers.Serializer[Any]):
    user = UserSerializer()
    flag_keys = serializers.ListField(child=serializers.CharField(), required=False)


class BulkResponseSerializer(serializers.Serializer[Any]):
    flags = serializers.DictField(child=EvaluationSerializer())
    ruleset_version = serializers.CharField()


class PreviewRequestSerializer(serializers.Serializer[Any]):
    flag_key = serializers.CharField(required=False)
    user = UserSerializer(required=False)
    users = UserSerializer(many=True, required=False, help_text="up to 1,000")
    flag = serializers.JSONField(required=False, help_text="an unsaved flag definition to dry-run")


class PreviewResponseSerializer(serializers.Serializer[Any]):
    results = serializers.ListField(child=serializers.DictField())
    summary = serializers.DictField()


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
