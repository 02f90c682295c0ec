"""factory-boy factories. Flags and segments are made through the write services, like everything else."""

from __future__ import annotations

from typing import Any

import factory

from flags.models import Flag
from flags.services import flag_create
from segments.models import Segment
from segments.services import segment_create
from tenancy.models import Tenant


class TenantFactory(factory.django.DjangoModelFactory[Tenant]):
    class Meta:
        model = Tenant

    slug = factory.Sequence(lambda n: f"tenant-{n}")
    name = factory.LazyAttribute(lambda t: t.slug.title())


def make_flag(tenant: Tenant, key: str = "checkout", **fields: Any) -> Flag:
    flag, _ = flag_create(tenant=tenant, actor="system:test", data={"key": key, **fields})
    return flag


def make_segment(tenant: Tenant, key: str = "beta", **fields: Any) -> Segment:
    segment, _ = segment_create(tenant=tenant, actor="system:test", data={"key": key, **fields})
    return segment
