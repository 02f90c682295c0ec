"""Exposure events (issue 15, item 4; README "Exposure events"): an SDK's batch of "this user was served
this variant of this flag", forwarded as `flag.exposure` deliveries to the tenant's webhooks that name
that type, and kept only while the delivery is owed.

`POST /v1/exposures` (scope `evaluate`) `{"batch_id": "<unique>", "exposures": [{"flag_key", "variant",
"user_id", "ts"}]}`, at most MAX_EXPOSURES entries. Storage is one delivery row per subscribed webhook per
batch, made in one statement, whose body lists the batch's exposures (DELIVERY BODY below). Its
`webhook-id` is derived from the tenant and the batch id, so a resent batch is not queued twice (a
unique constraint) and a receiver can drop a repeat. The user ids live only in that payload: the worker
replaces it with `scrubbed(...)` once the delivery settles, succeeded or failed. No exposure enters the
change-event outbox, `GET /v1/events` or the audit log: exposures are not changes. A tenant with no
webhook subscribed to `flag.exposure` stores nothing at all.

DELIVERY BODY, signed like every delivery:
`{"id": "exp_…", "type": "flag.exposure", "tenant": "acme", "batch_id": "…", "ts": "<received>",
  "exposures": [{"flag_key", "variant", "user_id", "ts"}]}`
"""

from __future__ import annotations

import hashlib
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any, Final

from django.conf import settings
from django.utils import timezone
from flagsvc_sdk.engine.limits import KEY_PATTERN, MAX_REPORTED_PROBLEMS, MAX_USER_ID_CHARS
from flagsvc_sdk.engine.values import is_utf8

from kernel.errors import Invalid
from kernel.timefmt import iso
from tenancy.models import Tenant
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.patterns import matches

EXPOSURE: Final = "flag.exposure"
MAX_EXPOSURES: Final = 1_000
MAX_BATCH_ID: Final = 128
MAX_AGE: Final = timedelta(days=7)
"""An exposure older than this is refused: analytics that late is a client bug (or a replay)."""
MAX_AHEAD: Final = timedelta(minutes=5)
"""Clock skew allowed for an SDK's `ts`."""


@dataclass(frozen=True)
class Exposure:
    flag_key: str
    variant: str
    user_id: str
    ts: datetime

    def to_document(self) -> dict[str, Any]:
        return {
            "flag_key": self.flag_key,
            "variant": self.variant,
            "user_id": self.user_id,
            "ts": iso(self.ts),
        }


def parse_exposures(body: dict[str, Any], *, now: datetime) -> tuple[str, list[Exposure]]:
    """The batch id and its exposures; `Invalid` naming the bad fields (the first MAX_REPORTED_PROBLEMS)."""
    errors: dict[str, list[str]] = {}
    unknown = sorted(str(name)[:64] for name in body if name not in ("batch_id", "exposures"))
    for name in unknown[:MAX_REPORTED_PROBLEMS]:
        errors[name] = ["Unknown field."]
    batch_id = body.get("batch_id")
    if not _printable(batch_id, MAX_BATCH_ID):
        errors["batch_id"] = [f"A unique id for this batch: 1-{MAX_BATCH_ID} printable characters."]
    raw = body.get("exposures")
    if not isinstance(raw, list) or not raw:
        errors["exposures"] = ["A non-empty list of {flag_key, variant, user_id, ts}."]
        raise Invalid(errors)
    if len(raw) > MAX_EXPOSURES:
        errors["exposures"] = [f"At most {MAX_EXPOSURES} exposures per batch; send several batches."]
        raise Invalid(errors)
    exposures: list[Exposure] = []
    for index, entry in enumerate(raw):
        exposure = _exposure(entry, f"exposures[{index}]", errors, now=now)
        if exposure is not None:
            exposures.append(exposure)
        if len(errors) >= MAX_REPORTED_PROBLEMS:
            break
    if errors:
        raise Invalid(errors)
    return str(batch_id), exposures


def _exposure(entry: Any, at: str, errors: dict[str, list[str]], *, now: datetime) -> Exposure | None:
    if not isinstance(entry, dict):
        errors[at] = ["An object {flag_key, variant, user_id, ts}."]
        return None
    problems: dict[str, list[str]] = {}
    for name in sorted(
        str(name)[:64] for name in entry if name not in ("flag_key", "variant", "user_id", "ts")
    ):
        problems[f"{at}.{name}"] = ["Unknown field."]
    flag_key, variant, user_id = entry.get("flag_key"), entry.get("variant"), entry.get("user_id")
    if not isinstance(flag_key, str) or not KEY_PATTERN.fullmatch(flag_key):
        problems[f"{at}.flag_key"] = ["A flag key."]
    if not isinstance(variant, str) or not KEY_PATTERN.fullmatch(variant):
        problems[f"{at}.variant"] = ["The served variant's key."]
    if not _printable(user_id, MAX_USER_ID_CHARS):
        problems[f"{at}.user_id"] = [
            f"The user's id: 1-{MAX_USER_ID_CHARS} characters, no control characters."
        ]
    ts = _moment(entry.get("ts"))
    if ts is None:
        problems[f"{at}.ts"] = ["When it was served: ISO 8601 with a time zone, e.g. 2026-12-01T10:00:00Z."]
    elif not now - MAX_AGE <= ts <= now + MAX_AHEAD:
        problems[f"{at}.ts"] = [f"Within the last {MAX_AGE.days} days and not in the future."]
    errors.update(problems)
    if problems or ts is None:
        return None
    return Exposure(str(flag_key), str(variant), str(user_id), ts)


def _printable(value: Any, limit: int) -> bool:
    return (
        isinstance(value, str)
        and 0 < len(value) <= limit
        and is_utf8(value)
        and not any(ord(ch) < 32 or ord(ch) == 127 for ch in value)
    )


def _moment(value: Any) -> datetime | None:
    if not isinstance(value, str) or len(value) > 40:
        return None
    try:
        moment = datetime.fromisoformat(value)
    except ValueError:
        return None
    return moment if moment.tzinfo is not None else None


def message_id(tenant: Tenant, batch_id: str) -> str:
    """The `webhook-id` of a batch's deliveries: the same for a resent batch, different per tenant."""
    digest = hashlib.sha256(f"{tenant.pk}\x00{batch_id}".encode()).hexdigest()
    return f"exp_{digest[:40]}"


def exposures_forward(*, tenant: Tenant, batch_id: str, exposures: list[Exposure]) -> int:
    """Queue one `flag.exposure` delivery per active webhook of the tenant that names that type; how
    many webhooks it was for (a resent batch is not queued again). Nothing is stored when none subscribes."""
    if not exposures:
        return 0
    webhooks = [
        webhook
        for webhook in Webhook.objects.for_tenant(tenant).filter(active=True)
        if matches(webhook.events, EXPOSURE)
    ]
    if not webhooks:
        return 0
    now = timezone.now()
    identity = message_id(tenant, batch_id)
    payload = {
        "id": identity,
        "type": EXPOSURE,
        "tenant": tenant.slug,
        "batch_id": batch_id,
        "ts": iso(now),
        "exposures": [exposure.to_document() for exposure in exposures],
    }
    created = WebhookDelivery.objects.for_tenant(tenant).bulk_create(
        [
            WebhookDelivery(
                tenant=tenant,
                webhook=webhook,
                event_id=None,
                message_id=identity,
                event_type=EXPOSURE,
                payload=payload,
                status=DeliveryStatus.PENDING,
                next_attempt_at=now,
                give_up_after=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
            )
            for webhook in webhooks
        ],
        ignore_conflicts=True,
    )
    return len(created)


def scrubbed(payload: dict[str, Any]) -> dict[str, Any]:
    """A settled exposure delivery's payload: everything but the exposures, which become a count."""
    exposures = payload.get("exposures")
    kept = {name: value for name, value in payload.items() if name != "exposures"}
    return {**kept, "exposures": len(exposures) if isinstance(exposures, list) else 0, "scrubbed": True}
