"""`/v1/killswitch` (api.md, Safe change: Kill switch). Thin: parse → flags.killswitch → document.

The reason comes from `X-Change-Reason`, read for every write by `TenantAPIView`; one is required to
engage (whatever the tenant's policy), and to release where the tenant's policy requires reasons.
"""

from __future__ import annotations

from typing import Any

from drf_spectacular.utils import OpenApiParameter, extend_schema
from rest_framework import serializers, status
from rest_framework.request import Request
from rest_framework.response import Response

from flags import killswitch
from flags.attributes import KILL_CATEGORY, KILL_CATEGORY_RULE, check_kill_category
from kernel.errors import Invalid, NotFound
from kernel.pagination import LimitOffsetPage
from tenancy.api.base import TenantAPIView
from tenancy.api.helpers import WriteRateThrottle
from tenancy.schema import paginated


class KillSwitchSerializer(serializers.Serializer[Any]):
    category = serializers.CharField()
    engaged_at = serializers.DateTimeField()
    by = serializers.CharField(help_text="the actor who engaged it")
    reason = serializers.CharField()
    flags = serializers.ListField(child=serializers.CharField(), help_text="the flags it turned off")


class KeptFlagSerializer(serializers.Serializer[Any]):
    key = serializers.CharField()
    why = serializers.CharField()


class ReleasedSerializer(serializers.Serializer[Any]):
    category = serializers.CharField()
    released_at = serializers.DateTimeField()
    restored = serializers.ListField(child=serializers.CharField())
    kept = KeptFlagSerializer(many=True, help_text="flags left as they are (changed by hand, archived)")


class KillSwitchAPIView(TenantAPIView):
    scope = "admin"
    throttle_classes = (WriteRateThrottle,)


class KillSwitchCollectionView(KillSwitchAPIView):
    @extend_schema(responses={200: paginated(KillSwitchSerializer, "PaginatedKillSwitchList")})
    def get(self, request: Request) -> Response:
        """The engaged kill switches, by category, each with the flags it turned off."""
        paginator = LimitOffsetPage()
        page = paginator.paginate_queryset(
            killswitch.engaged_switches(tenant=self.tenant), request, view=self
        )
        return paginator.get_paginated_response(list(page or []))


def no_body(request: Request) -> None:
    """Engage and release take no body: the reason travels in `X-Change-Reason`. A body is still read
    through the parsers (so a hostile one gets their 400 / 413 / 422) and refused unless empty, so a
    caller who put the reason in the body learns where it goes instead of having it ignored."""
    if request.data not in ({}, None):
        raise Invalid(
            {"body": ["takes no body: send the reason in the X-Change-Reason header"]},
            "This route takes no body.",
        )


CATEGORY = OpenApiParameter(
    "category",
    {"type": "string", "pattern": f"^{KILL_CATEGORY.pattern}$"},
    OpenApiParameter.PATH,
    description=f"the kill category: {KILL_CATEGORY_RULE} (flags.attributes, as a flag's `kill_category`)",
)


class KillSwitchDetailView(KillSwitchAPIView):
    @extend_schema(parameters=[CATEGORY], responses={200: KillSwitchSerializer})
    def get(self, request: Request, category: str) -> Response:
        """One engaged kill switch; 404 when the category is not engaged, 422 when it is no category."""
        check_kill_category(category, "category")
        found = killswitch.engaged_switch(tenant=self.tenant, category=category)
        if found is None:
            raise NotFound(f"The kill switch {category!r} is not engaged.", details={"category": category})
        return Response(found)

    @extend_schema(request=None, parameters=[CATEGORY], responses={201: KillSwitchSerializer})
    def post(self, request: Request, category: str) -> Response:
        """Engage: every live flag of the category that is on is turned off, in one transaction.

        A reason is required (`X-Change-Reason`): 422 naming `reason`. Engaged
        already → 409 `conflict`; no live flag names the category → 404. Approvals and freezes do not
        apply; every flag turned off gets its audit entry (action `kill`), and the tenant one
        `killswitch.engaged` event.
        """
        no_body(request)
        switch, killed = killswitch.killswitch_engage(tenant=self.tenant, category=category, actor=self.actor)
        response = Response(killswitch.switch_document(switch, killed), status=status.HTTP_201_CREATED)
        response["Location"] = f"/v1/killswitch/{switch.category}"
        return response

    @extend_schema(parameters=[CATEGORY], responses={200: ReleasedSerializer})
    def delete(self, request: Request, category: str) -> Response:
        """Release: each flag the switch turned off is put back to its state from before (action
        `unkill`), unless its state was changed by hand meanwhile (kept, and listed in `kept`).
        Not engaged → 404."""
        no_body(request)
        released = killswitch.killswitch_release(tenant=self.tenant, category=category, actor=self.actor)
        return Response(released.to_document())
