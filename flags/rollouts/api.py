"""`/v1/flags/{key}/rollouts` (api.md, Safe change) and `/v1/automation` (the circuit breaker; an
extension documented in the OpenAPI schema and ADR 0016). Thin: parse → service or selector → document."""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema, inline_serializer
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import selectors as flag_selectors
from flags.models import Flag
from flags.rollouts import selectors, services
from flags.rollouts.models import RolloutPlan
from kernel.errors import FlagNotFound, Invalid
from kernel.pagination import LimitOffsetPage
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import WriteRateThrottle, json_object
from tenancy.schema import paginated

STEP = inline_serializer(
    "RolloutStep",
    {
        "at": serializers.DateTimeField(),
        "percentage": serializers.FloatField(min_value=0, max_value=100),
        "state": serializers.ChoiceField(choices=["pending", "applied", "overtaken"], read_only=True),
        "applied_at": serializers.DateTimeField(read_only=True, allow_null=True),
        "late": serializers.BooleanField(read_only=True),
        "flag_version": serializers.IntegerField(read_only=True, allow_null=True),
    },
)


class RolloutSerializer(serializers.Serializer[Any]):
    id = serializers.CharField(read_only=True)
    flag = serializers.CharField(read_only=True)
    target = serializers.CharField(help_text='"default" or "rule:<id>"')
    variant = serializers.CharField()
    status = serializers.ChoiceField(
        choices=["scheduled", "running", "paused", "completed", "aborted"], read_only=True
    )
    current_step = serializers.IntegerField(read_only=True, help_text="steps done so far = index of the next")
    steps = serializers.ListField(child=STEP, max_length=20)
    next_step_at = serializers.DateTimeField(read_only=True, allow_null=True)
    status_detail = serializers.CharField(read_only=True, allow_null=True)
    held_by_breaker = serializers.DictField(read_only=True, allow_null=True)
    created_by = serializers.CharField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    started_at = serializers.DateTimeField(read_only=True, allow_null=True)
    finished_at = serializers.DateTimeField(read_only=True, allow_null=True)


class RolloutAPIView(TenantAPIView):
    read_scope = "flags:read"
    write_scope = "flags:write"
    throttle_classes = (WriteRateThrottle,)

    def flag(self, key: str) -> Flag:
        flag = flag_selectors.flag_get(tenant=self.tenant, key=key)
        if flag is None:
            raise FlagNotFound(f"No flag {key!r} in this tenant.")
        return flag

    def document(self, plan: RolloutPlan, key: str) -> dict[str, Any]:
        return selectors.plan_document(plan, key, selectors.breaker_hold(tenant_id=self.tenant.pk))


class RolloutCollectionView(RolloutAPIView):
    @extend_schema(responses={200: paginated(RolloutSerializer, "PaginatedRolloutList")})
    def get(self, request: Request, key: str) -> Response:
        """The flag's rollout plans, newest first."""
        flag = self.flag(key)
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(
            selectors.plan_list(tenant=self.tenant, flag_id=flag.pk), request, view=self
        )
        return paginator.get_paginated_response([self.document(plan, key) for plan in page or []])

    @extend_schema(request=RolloutSerializer, responses={201: RolloutSerializer})
    def post(self, request: Request, key: str) -> Response:
        """Schedule a rollout. Steps in the past or not increasing (in time and percentage) → 422 naming
        the step; a second open plan for the same target → 409 `rollout_conflict`."""
        plan = services.rollout_create(
            tenant=self.tenant, key=key, data=json_object(request), actor=self.actor
        )
        response = Response(self.document(plan, key), status=status.HTTP_201_CREATED)
        response["Location"] = f"/v1/flags/{key}/rollouts/{plan.pk}"
        return response


class RolloutDetailView(RolloutAPIView):
    @extend_schema(responses={200: RolloutSerializer})
    def get(self, request: Request, key: str, plan_id: str) -> Response:
        """One rollout plan."""
        flag = self.flag(key)
        plan = selectors.plan_get(tenant=self.tenant, flag_id=flag.pk, plan_id=int(plan_id))
        if plan is None:
            raise FlagNotFound(f"Flag {key!r} has no rollout plan {plan_id}.")
        return Response(self.document(plan, key))


ACTIONS = {
    "pause": services.rollout_pause,
    "resume": services.rollout_resume,
    "abort": services.rollout_abort,
}


class RolloutActionView(RolloutAPIView):
    scope = "flags:write"

    @extend_schema(request=None, responses={200: RolloutSerializer})
    def post(self, request: Request, key: str, plan_id: str, action: str) -> Response:
        """`pause` (scheduled or running), `resume` (paused), `abort` (any open plan); another status → 409."""
        plan = ACTIONS[action](tenant=self.tenant, key=key, plan_id=int(plan_id), actor=self.actor)
        return Response(self.document(plan, key))


BREAKER = inline_serializer(
    "AutomationBreaker",
    {
        "paused": serializers.BooleanField(),
        "reason": serializers.CharField(allow_null=True, max_length=500),
        "since": serializers.DateTimeField(allow_null=True, read_only=True),
        "changed_at": serializers.DateTimeField(allow_null=True, read_only=True),
        "changed_by": serializers.CharField(allow_null=True, read_only=True),
    },
)


BREAKER_REASON_MAX_LENGTH = 500
BREAKER_REQUEST: dict[str, Any] = {
    "description": "Pause (`paused: true`) with a `reason` (required, some text), or release "
    "(`paused: false`; a reason is optional and not kept).",
    "oneOf": [
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["paused", "reason"],
            "properties": {
                "paused": {"type": "boolean", "enum": [True]},
                "reason": {
                    "type": "string",
                    "pattern": r"\S",
                    "maxLength": BREAKER_REASON_MAX_LENGTH,
                    "description": "why automation is paused (api.md, Safe change: a reason is required)",
                },
            },
        },
        {
            "type": "object",
            "additionalProperties": False,
            "required": ["paused"],
            "properties": {
                "paused": {"type": "boolean", "enum": [False]},
                "reason": {"type": "string", "nullable": True, "maxLength": BREAKER_REASON_MAX_LENGTH},
            },
        },
    ],
}
"""`PUT /v1/automation`'s body: a reason is required to pause and only to pause (ADR 0016), which one
object schema with `reason` required (or optional) could not say."""


class AutomationView(TenantAPIView):
    """The tenant's circuit breaker for automation (an extension of api.md, ADR 0016)."""

    scope = "admin"
    throttle_classes = (WriteRateThrottle,)

    @extend_schema(responses={200: BREAKER})
    def get(self, request: Request) -> Response:
        """The tenant's switch, the installation's (`installation`, read-only here) and `held`: whether
        either pauses the tenant's rollouts now."""
        return Response(selectors.breaker_document(tenant=self.tenant))

    @extend_schema(request={"application/json": BREAKER_REQUEST}, responses={200: BREAKER})
    def put(self, request: Request) -> Response:
        """`{"paused": true, "reason": "incident 42"}` holds every rollout of the tenant (no step is
        applied) until `{"paused": false}`. A reason is required to pause. Audited."""
        body = json_object(request)
        errors: dict[str, list[str]] = {
            field: ["Unknown field; send `paused` and `reason`."]
            for field in body
            if field not in ("paused", "reason")
        }
        paused, reason = body.get("paused"), body.get("reason")
        if not isinstance(paused, bool):
            errors["paused"] = ["true or false."]
        if reason is None:
            reason = ""
        elif not isinstance(reason, str):  # `{}`, `0`, `false` are no reason (they read as none before)
            errors["reason"] = [f"A text of at most {BREAKER_REASON_MAX_LENGTH} characters."]
        if errors:
            raise Invalid(errors)
        services.breaker_set(tenant=self.tenant, engaged=bool(paused), reason=str(reason), actor=self.actor)
        return Response(selectors.breaker_document(tenant=self.tenant))
