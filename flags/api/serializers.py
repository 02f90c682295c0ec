"""Serializers that document the flag shapes in the OpenAPI schema.

Domain validation is the engine's (`flagsvc_sdk.engine.validate_flag`), so these describe, they do
not decide: the server and the SDK share one definition of a valid flag.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import extend_schema_field
from rest_framework import serializers

from flags.attributes import KILL_CATEGORY
from tenancy.schema import StrictBody

FLAG_TYPES = ["boolean", "string", "number", "json"]
FLAG_STATES = ["on", "off"]


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
    description = serializers.CharField(required=False, allow_blank=True)
    type = serializers.ChoiceField(FLAG_TYPES, required=False)
    state = serializers.ChoiceField(FLAG_STATES, required=False)
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


@extend_schema_field({"$ref": "#/components/schemas/FlagTypeEnum"})
class _FlagTypeField(serializers.ChoiceField):
    """The flag's `type` in a second component: a reference to `Flag`'s enum, whose name drf-spectacular
    could otherwise only make unique with a hash (other components have a `type` of other choices)."""


@extend_schema_field({"$ref": "#/components/schemas/FlagStateEnum"})
class _FlagStateField(serializers.ChoiceField):
    """The flag's `state` in a second component (see `_FlagTypeField`)."""


class FlagReplaceSerializer(FlagSerializer):
    """`PUT /v1/flags/{key}`: the path names the flag, so the body may leave `key` out (a different
    one is a 422: keys are immutable)."""

    key = serializers.RegexField(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,127}$", required=False)
    type = _FlagTypeField(FLAG_TYPES, required=False)
    state = _FlagStateField(FLAG_STATES, required=False)


class StoredFlagSerializer(FlagSerializer):
    """A flag as one of its versions stored it: the document without `usage`, which is the live flag's
    (how it is evaluated now), not something a version holds."""

    usage = None  # type: ignore[assignment]  # DRF: None drops the inherited field
    type = _FlagTypeField(FLAG_TYPES, required=False)
    state = _FlagStateField(FLAG_STATES, required=False)


class FlagVersionSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField()
    created_at = serializers.DateTimeField()
    actor = serializers.CharField()
    flag = StoredFlagSerializer()


class RollbackSerializer(serializers.Serializer[Any]):
    version = serializers.IntegerField(min_value=1)
