"""Serializers that document the flag shapes in the OpenAPI schema.

Domain validation is the engine's (`flagsvc_sdk.engine.validate_flag`), so these describe, they do
not decide: the server and the SDK share one definition of a valid flag.
"""

from __future__ import annotations

from typing import Any

from rest_framework import serializers

from flags.attributes import KILL_CATEGORY
from tenancy.schema import StrictBody


class VariantSerializer(StrictBody, serializers.Serializer[Any]):
    key = serializers.CharField()
    value = serializers.JSONField()
    weight = serializers.FloatField(required=False)


class StaleSerializer(serializers.Serializer[Any]):
    reason = serializers.ChoiceField(
        ["never_evaluated", "not_evaluated_recently", "single_variant", "past_remove_after"]
    )
    since = serializers.DateTimeField()


class UsageSerializer(serializers.Serializer[Any]):
    last_evaluated_at = serializers.DateTimeField(allow_null=True)
    counts = serializers.DictField(
        child=serializers.DictField(child=serializers.IntegerField()),
        help_text='{"24h": {"<variant>": n}, "7d": {...}, "30d": {...}}',
    )
    stale = StaleSerializer(allow_null=True)


class FlagSerializer(StrictBody, serializers.Serializer[Any]):
    key = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$")
    name = serializers.CharField(required=False)
    description = serializers.CharField(required=False)
    type = serializers.ChoiceField(["boolean", "string", "number", "json"], required=False)
    state = serializers.ChoiceField(["on", "off"], required=False)
    variants = VariantSerializer(many=True, required=False)
    off_variant = serializers.CharField(required=False)
    targets = serializers.JSONField(required=False)
    rules = serializers.JSONField(required=False, help_text="ordered rules, see rules.md")
    default = serializers.JSONField(required=False, allow_null=True)
    prerequisites = serializers.JSONField(required=False)
    bucket_by = serializers.CharField(required=False)
    tags = serializers.ListField(child=serializers.CharField(), required=False)
    kill_category = serializers.RegexField(
        f"^{KILL_CATEGORY.pattern}$",
        required=False,
        allow_null=True,
        help_text="The kill switch that turns this flag off (POST /v1/killswitch/{category}); null = none.",
    )
    protected = serializers.BooleanField(
        required=False, help_text="changes need another person's approval (absent: unchanged)"
    )
    lifecycle = serializers.ChoiceField(
        ["temporary", "permanent"], required=False, help_text="default temporary (flags.staleness)"
    )
    remove_after = serializers.DateField(
        required=False, allow_null=True, help_text="the date after which the flag is stale (ISO date)"
    )
    reuse_key = serializers.BooleanField(
        required=False, write_only=True, help_text="create: take the key of an archived flag (audited)"
    )
    usage = UsageSerializer(read_only=True)
    version = serializers.IntegerField(read_only=True)
    created_at = serializers.DateTimeField(read_only=True)
    updated_at = serializers.DateTimeField(read_only=True)
    archived_at = serializers.DateTimeField(read_only=True, allow_null=True)


class FlagVersionSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    flag = FlagSerializer()


class RollbackSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(min_value=1)
