"""Kill switches (api.md, Safe change; ADR "kill switches"): turn every live flag of a category off in
one transaction, and put each back as it was.

- `killswitch_engage`: the live flags of the category that are on are turned off, one new version and
  one audit entry (action `kill`) each, then one entry and one change event for the switch itself
  (`killswitch.engaged`). A reason is required, whatever the tenant's policy. Engaging an engaged
  category is 409 `conflict` (the first engagement, its reason and its list stay as they are); a
  category no live flag names is 404 (a typo must not look like a switch that worked).
- `killswitch_release`: each flag the switch turned off is put back to its state from before, one
  version and one entry (`unkill`) each, and one `killswitch.released` event. What wins when a person
  changed a flag while the switch was engaged: a change to the flag's *state* (someone turned it on, or
  on and off again, by hand) is a later, deliberate decision and is kept; any other change (rules,
  variants, ...) is kept as well, since release only ever writes `state`. An archived flag is left alone.
- Flags created in the category, or moved into it, while it is engaged are not turned off: a switch acts
  on the flags it found when it was engaged (the creator's explicit state wins); engage again after a
  release to include them.

These write through the same lower-level steps as every flag service (the tenant's ruleset transaction,
a locked row, `save()` bumping the version, the audit receivers, the ruleset invalidation after commit)
but not through the public `flag_update`: a gate there (approvals, freezes) does not apply to them. The
audit does: nothing here writes a flag without its entry.
"""

from __future__ import annotations

from dataclasses import dataclass, field
from datetime import datetime
from typing import Any

from django.db import IntegrityError, transaction
from django.utils import timezone

from audit.models import AuditAction
from audit.receivers import set_audit_action
from audit.records import audit_tenant_event
from flags import selectors
from flags.attributes import check_kill_category
from flags.models import Flag, FlagState, FlagVersion, KilledFlag, KillSwitch
from kernel import context
from kernel.change_reason import parse_change_reason, reason_missing
from kernel.context import acting_as
from kernel.errors import Conflict, NotFound
from kernel.timefmt import iso
from tenancy.models import Tenant
from tenancy.ruleset import ruleset_change

ENTITY = "killswitch"


@dataclass(frozen=True)
class Released:
    category: str
    released_at: datetime
    restored: list[str] = field(default_factory=list)
    """Flags put back to their state from before the switch."""
    kept: dict[str, str] = field(default_factory=dict)
    """Flags left as they are, each with why (changed by hand while engaged, archived, ...)."""

    def to_document(self) -> dict[str, Any]:
        return {
            "category": self.category,
            "released_at": iso(self.released_at),
            "restored": self.restored,
            "kept": [{"key": key, "why": why} for key, why in sorted(self.kept.items())],
        }


def switch_document(switch: KillSwitch, flags: list[str]) -> dict[str, Any]:
    """An engaged switch as `GET /v1/killswitch` lists it."""
    return {
        "category": switch.category,
        "engaged_at": iso(switch.engaged_at),
        "by": switch.engaged_by,
        "reason": switch.reason,
        "flags": flags,
    }


def killswitch_engage(
    *, tenant: Tenant, category: str, actor: str | None = None, reason: str | None = None
) -> tuple[KillSwitch, list[str]]:
    """Turn every live flag of `category` off; returns the switch and the keys it turned off.

    `reason` defaults to the one the caller's context carries (`X-Change-Reason`); one is required.
    """
    category = check_kill_category(category, "category")
    said = parse_change_reason(reason) or context.reason()
    if not said:
        raise reason_missing()
    with acting_as(actor, reason=said), ruleset_change(tenant) as change:
        engaged = KillSwitch.objects.for_tenant(tenant).filter(category=category).first()
        if engaged is not None:
            raise Conflict(
                f"The kill switch {category!r} is engaged already (since {iso(engaged.engaged_at)}, "
                f"by {engaged.engaged_by}); release it first to engage it again.",
                details={
                    "category": category,
                    "engaged_at": iso(engaged.engaged_at),
                    "by": engaged.engaged_by,
                },
            )
        flags = list(
            selectors.flag_queryset(tenant=tenant).select_for_update().filter(kill_category=category)
        )
        if not flags:
            raise NotFound(
                f"No live flag in this tenant names the kill category {category!r}.",
                details={"category": category},
            )
        try:
            with transaction.atomic():
                switch = KillSwitch.objects.for_tenant(tenant).create(
                    tenant=tenant,
                    category=category,
                    engaged_at=timezone.now(),
                    engaged_by=context.actor(),
                    reason=said,
                )
        except IntegrityError:  # engaged in between (SQLite serialises writers; PostgreSQL has the lock)
            raise Conflict(
                f"The kill switch {category!r} is engaged already.", details={"category": category}
            ) from None
        killed: list[str] = []
        for flag in flags:
            if flag.state == FlagState.OFF:
                continue
            state_before = flag.state
            flag.state = FlagState.OFF
            set_audit_action(flag, AuditAction.KILL)
            flag.save()
            change.flags.add(flag.key)
            KilledFlag.objects.for_tenant(tenant).create(
                tenant=tenant,
                switch=switch,
                flag=flag,
                state_before=state_before,
                killed_version=flag.version,
            )
            killed.append(flag.key)
        document = switch_document(switch, killed)
        audit_tenant_event(
            tenant_id=tenant.pk,
            entity=ENTITY,
            key=category,
            action=AuditAction.ENGAGE,
            before=None,
            after=document,
        )
        return switch, killed


def killswitch_release(
    *, tenant: Tenant, category: str, actor: str | None = None, reason: str | None = None
) -> Released:
    """Put back each flag the engaged switch of `category` turned off; 404 when it is not engaged."""
    category = check_kill_category(category, "category")
    said = parse_change_reason(reason)
    with acting_as(actor, reason=said), ruleset_change(tenant) as change:
        switch = KillSwitch.objects.for_tenant(tenant).select_for_update().filter(category=category).first()
        if switch is None:
            raise NotFound(f"The kill switch {category!r} is not engaged.", details={"category": category})
        released = Released(category=category, released_at=timezone.now())
        entries = KilledFlag.objects.for_tenant(tenant).filter(switch=switch).order_by("flag__key")
        for killed in entries:
            flag = (
                selectors.flag_queryset(tenant=tenant, include_archived=True)
                .select_for_update()
                .filter(pk=killed.flag_id)
                .first()
            )
            if flag is None:
                continue
            why = _why_kept(tenant, flag, killed)
            if why is not None:
                released.kept[flag.key] = why
                continue
            flag.state = killed.state_before
            set_audit_action(flag, AuditAction.UNKILL)
            flag.save()
            change.flags.add(flag.key)
            released.restored.append(flag.key)
        before = switch_document(switch, [k.flag.key for k in entries.select_related("flag")])
        switch.delete()
        audit_tenant_event(
            tenant_id=tenant.pk,
            entity=ENTITY,
            key=category,
            action=AuditAction.RELEASE,
            before=before,
            after=released.to_document(),
        )
        return released


def _why_kept(tenant: Tenant, flag: Flag, killed: KilledFlag) -> str | None:
    """Why release leaves `flag` as it is, or None to put its state back (the rule is in the module's
    docstring): archived since, or its state written by someone else since the kill."""
    if flag.is_archived:
        return "archived while the switch was engaged"
    later_states = (
        FlagVersion.objects.for_tenant(tenant)
        .filter(flag=flag, version__gt=killed.killed_version)
        .values_list("document__state", flat=True)
    )
    if any(state != FlagState.OFF for state in later_states):
        return "its state was changed by hand while the switch was engaged"
    if flag.state == killed.state_before:
        return "already in its state from before"
    return None


def engaged_switches(*, tenant: Tenant | int) -> list[dict[str, Any]]:
    """The tenant's engaged switches, by category, each with the flags it turned off."""
    switches = list(KillSwitch.objects.for_tenant(tenant).order_by("category"))
    killed: dict[int, list[str]] = {switch.pk: [] for switch in switches}
    rows = (
        KilledFlag.objects.for_tenant(tenant)
        .filter(switch__in=switches)
        .order_by("flag__key")
        .values_list("switch_id", "flag__key")
    )
    for switch_id, key in rows:
        killed[switch_id].append(key)
    return [switch_document(switch, killed[switch.pk]) for switch in switches]


def engaged_switch(*, tenant: Tenant | int, category: str) -> dict[str, Any] | None:
    return next((s for s in engaged_switches(tenant=tenant) if s["category"] == category), None)


def kill_categories_in_use(*, tenant: Tenant | int) -> dict[str, list[Flag]]:
    """Category → its live flags, for the admin's kill switch page."""
    in_use: dict[str, list[Flag]] = {}
    for flag in selectors.flag_queryset(tenant=tenant).exclude(kill_category=""):
        in_use.setdefault(flag.kill_category, []).append(flag)
    return in_use


def killed_by(*, tenant: Tenant | int, flag: Flag) -> KillSwitch | None:
    """The engaged switch that turned `flag` off and will put it back, if any (the admin's notice)."""
    return KillSwitch.objects.for_tenant(tenant).filter(killed__flag=flag).order_by("-engaged_at").first()
