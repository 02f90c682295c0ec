"""The worker's work (`manage.py run_worker`, ADR 0013): fan change events out into deliveries, attempt
the deliveries that are due, prune old events and settled deliveries.

At least once, across `kill -9` and restarts:
- Fan-out: each webhook keeps a cursor (the last ChangeEvent id it has seen). Under a row lock on the
  webhook, the events after the cursor become deliveries and the cursor moves, in one transaction: a
  worker that dies before the commit leaves the cursor where it was, and `UniqueConstraint(webhook,
  event_id)` makes a repeat harmless. A tenant's events get ids in commit order (audit.receivers appends
  them under the tenant row lock), so a cursor never skips one that commits late.
- Attempts: a due pending delivery is claimed with `SELECT … FOR UPDATE SKIP LOCKED`; claiming counts the
  attempt, sets a fresh `lease_token` and moves `next_attempt_at` a lease (WEBHOOK_LEASE_SECONDS) ahead,
  and commits before anything is sent. Another worker skips the row while it is locked and finds it not
  due until the lease ends, so two workers never send the same attempt at once; a worker killed while
  sending leaves a row that is due again when the lease ends. The outcome is recorded only by the lease
  holder (`lease_token` matches).
- Failures are retried after `backoff(attempts)`: exponential from WEBHOOK_BACKOFF_BASE_SECONDS, capped at
  WEBHOOK_BACKOFF_MAX_SECONDS, with jitter (a random half of it); a failure after `give_up_after`
  (WEBHOOK_RETRY_HOURS after the event, 24 h by default) is final: `failed`.

Time comes from an injectable clock so that tests can step through a day of backoff without sleeping.
"""

from __future__ import annotations

import json
import logging
import random
import time
import uuid
from collections.abc import Callable
from dataclasses import dataclass
from datetime import datetime, timedelta
from typing import Any

from cryptography.fernet import InvalidToken
from django.conf import settings
from django.db import transaction
from django.db.models import F, Max, OuterRef, Subquery
from django.utils import timezone

from audit.events import event_document
from audit.models import ChangeEvent
from audit.outbox import prune_events
from usage.services import usage_prune
from webhooks import secrets
from webhooks.delivery import Outcome, send
from webhooks.exposures import EXPOSURE, scrubbed
from webhooks.models import DeliveryStatus, Webhook, WebhookDelivery
from webhooks.patterns import matches

logger = logging.getLogger("flagsvc.worker")

Clock = Callable[[], datetime]
FAN_OUT_BATCH = 500

# Scheduled work of the apps above webhooks (the rollout scheduler, ADR 0016), which this module must not
# import: they register a job in their AppConfig.ready. A job gets the pass's clock reading and returns
# how many things it did.
ScheduledJob = Callable[[datetime], int]
SCHEDULED_JOBS: list[ScheduledJob] = []


def register_scheduled_job(job: ScheduledJob) -> None:
    if job not in SCHEDULED_JOBS:
        SCHEDULED_JOBS.append(job)


# Retention jobs of the apps above webhooks (the purge of archived flags, flags.retention): run with the
# worker's own pruning, once every WORKER_PRUNE_INTERVAL_SECONDS, rather than on every pass.
RETENTION_JOBS: list[ScheduledJob] = []


def register_retention_job(job: ScheduledJob) -> None:
    if job not in RETENTION_JOBS:
        RETENTION_JOBS.append(job)


@dataclass(frozen=True)
class Claim:
    delivery_id: int
    lease_token: uuid.UUID
    attempts: int
    give_up_after: datetime
    url: str
    secret_encrypted: str
    message_id: str
    body: str
    # What the payload becomes once the delivery settles: an exposure batch's user ids go (ADR 0019).
    settled_payload: dict[str, Any] | None = None


def backoff(attempts: int, rng: Callable[[], float] = random.random) -> timedelta:
    """The wait after the `attempts`-th failed attempt: base·2^(attempts-1), at most the cap, of which
    a random half is jitter (so receivers that failed together are not retried together)."""
    base = float(settings.WEBHOOK_BACKOFF_BASE_SECONDS)
    ceiling = float(settings.WEBHOOK_BACKOFF_MAX_SECONDS)
    delay = min(ceiling, base * 2 ** min(max(attempts - 1, 0), 32))
    return timedelta(seconds=delay / 2 + rng() * delay / 2)


class Worker:
    def __init__(
        self,
        *,
        clock: Clock = timezone.now,
        rng: Callable[[], float] = random.random,
        batch: int = 20,
        timeout: float | None = None,
    ) -> None:
        self.clock = clock
        self.rng = rng
        self.batch = batch
        self.timeout = float(settings.WEBHOOK_TIMEOUT_SECONDS if timeout is None else timeout)
        self.last_prune: datetime | None = None

    # One pass ---------------------------------------------------------------------------------------

    def run_once(self) -> int:
        """Fan out, then attempt one batch of due deliveries; how many things were done (0: idle)."""
        done = self.run_scheduled_jobs() + self.fan_out()
        for claim in self.claim():
            self.attempt(claim)
            done += 1
        self.prune_if_due()
        return done

    def run_scheduled_jobs(self) -> int:
        """Each registered job once; one that fails is logged and does not hold up the deliveries."""
        done = 0
        for job in SCHEDULED_JOBS:
            try:
                done += job(self.clock())
            except Exception:
                logger.exception(
                    "scheduled job failed", extra={"job": getattr(job, "__qualname__", str(job))}
                )
        return done

    # Fan-out ----------------------------------------------------------------------------------------

    def fan_out(self) -> int:
        """Turn new change events into deliveries for every webhook whose cursor is behind."""
        latest = (
            ChangeEvent.all_tenants.filter(tenant_id=OuterRef("tenant_id"))
            .values("tenant_id")
            .annotate(latest=Max("pk"))
            .values("latest")
        )
        behind = list(
            Webhook.all_tenants.annotate(latest=Subquery(latest))
            .filter(latest__gt=F("event_cursor"))
            .values_list("pk", flat=True)
        )
        created = 0
        for webhook_id in behind:
            created += self._fan_out_one(webhook_id)
        return created

    def _fan_out_one(self, webhook_id: int) -> int:
        with transaction.atomic():
            webhook = Webhook.all_tenants.select_for_update(skip_locked=True).filter(pk=webhook_id).first()
            if webhook is None:
                return 0  # deleted, or another worker is on it
            events = list(
                ChangeEvent.all_tenants.select_related("tenant", "audit_entry")
                .filter(tenant_id=webhook.tenant_id, pk__gt=webhook.event_cursor)
                .order_by("pk")[:FAN_OUT_BATCH]
            )
            if not events:
                return 0
            now = self.clock()
            deliveries = []
            if webhook.active:  # an inactive webhook skips the events of its pause
                for event in events:
                    document = event_document(event)
                    if matches(webhook.events, document["type"]):
                        deliveries.append(
                            WebhookDelivery(
                                tenant_id=webhook.tenant_id,
                                webhook=webhook,
                                event_id=event.pk,
                                event_type=document["type"],
                                payload=document,
                                next_attempt_at=now,
                                give_up_after=now + timedelta(hours=settings.WEBHOOK_RETRY_HOURS),
                            )
                        )
            WebhookDelivery.all_tenants.bulk_create(deliveries, ignore_conflicts=True)
            webhook.event_cursor = events[-1].pk
            Webhook.all_tenants.filter(pk=webhook.pk).update(event_cursor=webhook.event_cursor)
        return len(deliveries)

    # Attempts ---------------------------------------------------------------------------------------

    def claim(self) -> list[Claim]:
        """Lease up to `batch` due deliveries to this worker (committed before any is sent)."""
        now = self.clock()
        lease_until = now + timedelta(seconds=settings.WEBHOOK_LEASE_SECONDS)
        claims = []
        with transaction.atomic():
            rows = list(
                WebhookDelivery.all_tenants.select_for_update(skip_locked=True, of=("self",))
                .select_related("webhook")
                .filter(status=DeliveryStatus.PENDING, next_attempt_at__lte=now, webhook__active=True)
                .order_by("next_attempt_at", "pk")[: self.batch]
            )
            for row in rows:
                row.lease_token = uuid.uuid4()
                row.attempts += 1
                row.next_attempt_at = lease_until
                row.last_attempt_at = now
                claims.append(
                    Claim(
                        delivery_id=row.pk,
                        lease_token=row.lease_token,
                        attempts=row.attempts,
                        give_up_after=row.give_up_after,
                        url=row.webhook.url,
                        secret_encrypted=row.webhook.secret_encrypted,
                        message_id=row.message_id or str(row.event_id),
                        body=json.dumps(row.payload, separators=(",", ":"), ensure_ascii=False),
                        settled_payload=scrubbed(row.payload) if row.event_type == EXPOSURE else None,
                    )
                )
            WebhookDelivery.all_tenants.bulk_update(
                rows, ["lease_token", "attempts", "next_attempt_at", "last_attempt_at"]
            )
        return claims

    def attempt(self, claim: Claim) -> Outcome:
        """Send one claimed delivery and record the outcome, whatever happens on the way: an attempt
        that raises is recorded as a failed one and retried like any other, because an exception
        escaping here would leave the rest of the batch (other tenants' deliveries too) leased and
        unsent until the lease ends, and this delivery pending with no reason, forever."""
        started = time.monotonic()
        try:
            outcome = self._send(claim)
        except Exception as error:
            logger.exception("webhook attempt raised", extra={"delivery_id": claim.delivery_id})
            outcome = Outcome.failure(
                f"the attempt could not be made: {type(error).__name__}: {error}",
                duration_ms=int((time.monotonic() - started) * 1000),
            )
        self.record(claim, outcome)
        return outcome

    def _send(self, claim: Claim) -> Outcome:
        try:
            secret = secrets.decrypt(claim.secret_encrypted)
        except InvalidToken:
            return Outcome.failure(
                "the signing secret cannot be decrypted: WEBHOOK_SECRET_KEYS lost the key it was made with"
            )
        return send(
            url=claim.url,
            secret=secret,
            message_id=claim.message_id,
            body=claim.body,
            timeout=self.timeout,
        )

    def record(self, claim: Claim, outcome: Outcome) -> None:
        now = self.clock()
        if outcome.ok:
            status, next_attempt_at = DeliveryStatus.SUCCEEDED, None
        elif now >= claim.give_up_after:
            status, next_attempt_at = DeliveryStatus.FAILED, None
        else:
            status, next_attempt_at = DeliveryStatus.PENDING, now + backoff(claim.attempts, self.rng)
        settled: dict[str, Any] = {}
        if status != DeliveryStatus.PENDING and claim.settled_payload is not None:
            settled["payload"] = claim.settled_payload
        updated = WebhookDelivery.all_tenants.filter(
            pk=claim.delivery_id, lease_token=claim.lease_token
        ).update(
            **settled,
            status=status,
            next_attempt_at=next_attempt_at,
            last_status_code=outcome.status_code,
            last_error=outcome.error,
            duration_ms=outcome.duration_ms,
            lease_token=None,
        )
        logger.info(
            "webhook attempt",
            extra={
                "delivery_id": claim.delivery_id,
                "attempt": claim.attempts,
                "status": status,
                "status_code": outcome.status_code,
                "duration_ms": outcome.duration_ms,
                "error": outcome.error or None,
                "recorded": bool(updated),
            },
        )

    # Retention --------------------------------------------------------------------------------------

    def prune_if_due(self) -> int:
        """Prune events past EVENT_RETENTION_DAYS, settled deliveries past
        WEBHOOK_DELIVERY_RETENTION_DAYS and usage past its retention (usage.services.usage_prune), and
        run the registered retention jobs (archived flags, flags.retention), once every
        WORKER_PRUNE_INTERVAL_SECONDS."""
        now = self.clock()
        interval = timedelta(seconds=settings.WORKER_PRUNE_INTERVAL_SECONDS)
        if self.last_prune is not None and now - self.last_prune < interval:
            return 0
        self.last_prune = now
        events = prune_events(now)
        deliveries = prune_deliveries(now)
        usage = usage_prune(now)
        others = 0
        for job in RETENTION_JOBS:
            try:
                others += job(now)
            except Exception:
                logger.exception(
                    "retention job failed", extra={"job": getattr(job, "__qualname__", str(job))}
                )
        if events or deliveries or usage or others:
            logger.info(
                "pruned",
                extra={"events": events, "deliveries": deliveries, "usage": usage, "other": others},
            )
        return events + deliveries + usage + others


def prune_deliveries(now: datetime) -> int:
    """Delete the delivery log rows that are settled (succeeded or failed) and whose last attempt is
    older than WEBHOOK_DELIVERY_RETENTION_DAYS, in batches of short transactions; a pending delivery is
    never pruned, however old (it is still owed). Safe to run from several workers at once."""
    cutoff = now - timedelta(days=settings.WEBHOOK_DELIVERY_RETENTION_DAYS)
    settled = WebhookDelivery.all_tenants.filter(
        status__in=[DeliveryStatus.SUCCEEDED, DeliveryStatus.FAILED], last_attempt_at__lt=cutoff
    )
    deleted = 0
    while True:
        batch = list(settled.order_by("pk").values_list("pk", flat=True)[: settings.EVENT_PRUNE_BATCH])
        if not batch:
            return deleted
        count, _ = WebhookDelivery.all_tenants.filter(pk__in=batch).delete()
        deleted += count
