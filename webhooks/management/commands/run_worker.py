"""`manage.py run_worker`: deliver webhooks and prune old events until SIGTERM or Ctrl-C (ADR 0013).

Run as many as you like (on PostgreSQL they share the work and never send the same attempt at once);
a worker stopped by a signal finishes the attempt in hand, one killed outright loses nothing either
(its attempts are retried when their lease ends).
"""

from __future__ import annotations

import logging
import signal
import threading
import time
from typing import Any

from django.conf import settings
from django.core.management.base import BaseCommand, CommandParser
from django.db import DatabaseError, connections

from kernel.context import acting_as
from webhooks.worker import Worker

logger = logging.getLogger("flagsvc.worker")


class Command(BaseCommand):
    help = "Deliver webhooks and prune old change events (runs until SIGTERM or Ctrl-C)."

    def add_arguments(self, parser: CommandParser) -> None:
        parser.add_argument("--batch", type=int, default=20, help="deliveries claimed at a time")
        parser.add_argument("--once", action="store_true", help="one pass, then exit (for scripts and tests)")

    def handle(self, *args: Any, **options: Any) -> None:
        stop = threading.Event()
        for signum in (signal.SIGTERM, signal.SIGINT):
            signal.signal(signum, lambda *_: stop.set())
        worker = Worker(batch=options["batch"])
        logger.info("worker started", extra={"batch": options["batch"]})
        with acting_as("system:worker"):
            while not stop.is_set():
                try:
                    done = worker.run_once()
                except DatabaseError:
                    logger.warning("worker pass failed (database); retrying", exc_info=True)
                    connections.close_all()
                    done = 0
                    time.sleep(1.0)
                except Exception:
                    # A bug must not stop every tenant's deliveries: the leased attempts are retried.
                    logger.exception("worker pass failed; retrying")
                    done = 0
                    time.sleep(1.0)
                if options["once"]:
                    break
                if not done:
                    stop.wait(settings.WORKER_POLL_SECONDS)
        logger.info("worker stopped")
