"""Two workers, one plan, real PostgreSQL: each step is applied exactly once (ADR 0016)."""

from __future__ import annotations

import threading
from datetime import UTC, datetime, timedelta

import pytest
from django.db import connection, connections

from audit.models import AuditEntry
from flags.models import FlagVersion
from flags.rollouts import clock
from flags.rollouts.models import RolloutPlan
from flags.rollouts.services import rollout_create
from tests.factories import make_flag
from webhooks.worker import Worker

pytestmark = [
    pytest.mark.postgres,
    pytest.mark.django_db(transaction=True),
    pytest.mark.skipif(connection.vendor != "postgresql", reason="runs in the PostgreSQL pass of make test"),
]

T0 = datetime(2026, 12, 1, 10, 0, tzinfo=UTC)


def test_two_workers_one_plan__each_step_applied_exactly_once(tenant):
    make_flag(tenant, state="on", default={"variant": "off"})
    steps = [
        {"at": (T0 + timedelta(minutes=m)).isoformat(), "percentage": p}
        for m, p in ((1, 5), (2, 25), (3, 100))
    ]
    with clock.using_clock(lambda: T0):
        plan = rollout_create(
            tenant=tenant,
            key="checkout",
            data={"target": "default", "variant": "on", "steps": steps},
            actor="user:pm",
        )
    for minute in (1, 2, 3):
        moment = T0 + timedelta(minutes=minute, seconds=1)
        barrier = threading.Barrier(2)
        done: list[int] = []
        errors: list[BaseException] = []

        def work(
            moment: datetime = moment,
            barrier: threading.Barrier = barrier,
            done: list[int] = done,
            errors: list[BaseException] = errors,
        ) -> None:
            try:
                barrier.wait()
                for _ in range(5):  # several passes each: the later ones must find nothing due
                    done.append(Worker(clock=lambda: moment).run_scheduled_jobs())
            except BaseException as error:
                errors.append(error)
            finally:
                connections.close_all()

        threads = [threading.Thread(target=work) for _ in range(2)]
        for thread in threads:
            thread.start()
        for thread in threads:
            thread.join(60)
        assert errors == []
        assert sum(done) == 1, f"step {minute} applied {sum(done)} times"
    stored = RolloutPlan.objects.for_tenant(tenant).get(pk=plan.pk)
    assert (stored.status, stored.current_step) == ("completed", 3)
    assert FlagVersion.objects.for_tenant(tenant).filter(actor="system:rollout").count() == 3
    assert list(
        AuditEntry.objects.for_tenant(tenant)
        .filter(actor="system:rollout")
        .order_by("seq")
        .values_list("action", flat=True)
    ) == ["rollout_progress", "rollout_progress", "rollout_complete"]
