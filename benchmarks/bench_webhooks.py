"""Webhook deliveries per second to a receiver on loopback (issue 11, item 7; ADR 0013).

On a fresh PostgreSQL database of its own. The receiver is a separate process (a threaded
`http.server` answering 204), so it does not share this process's GIL.

- In-process, per round: N events (flag creations) are fanned out into N deliveries (`Worker.fan_out`),
  then sent by one worker (`Worker.run_once` until none is due): deliveries/s of each phase, and the
  median attempt duration the delivery log records.
- Real processes: N pending deliveries drained by 1, then by 2 `manage.py run_worker` processes (wall
  time from start to the last `succeeded`, process start-up excluded by waiting for "worker started").

Wall time throughout (run it with BENCH_CLOCK=wall so the header says so): the work is mostly
waiting on the network and the database.

    BENCH_CLOCK=wall .venv/bin/python benchmarks/bench_webhooks.py [--events 300] [--rounds 5] [--json out.json]
"""

from __future__ import annotations

import argparse
import os
import statistics
import subprocess
import sys
import time
import uuid
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))
from _common import REPO, header, table, write_json

ADMIN_URL = "postgres://postgres@127.0.0.1:5432/postgres"
RECEIVER = """
import sys
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
class H(BaseHTTPRequestHandler):
    protocol_version = "HTTP/1.1"
    def do_POST(self):
        self.rfile.read(int(self.headers.get("Content-Length") or 0))
        self.send_response(204); self.send_header("Content-Length", "0"); self.end_headers()
    def log_message(self, *a): pass
s = ThreadingHTTPServer(("127.0.0.1", 0), H); s.daemon_threads = True
print(s.server_address[1], flush=True); s.serve_forever()
"""


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--events", type=int, default=300)
    parser.add_argument("--rounds", type=int, default=5)
    parser.add_argument("--process-rounds", type=int, default=3)
    parser.add_argument("--json")
    args = parser.parse_args()

    import psycopg

    name = f"flagsvc_bench_webhooks_{uuid.uuid4().hex[:8]}"
    with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
        conn.execute(f'CREATE DATABASE "{name}"')
    database_url = f"postgres://postgres@127.0.0.1:5432/{name}"
    env = {
        **os.environ,
        "DATABASE_URL": database_url,
        "DEBUG": "0",
        "SECRET_KEY": "bench-secret-key",
        "JWT_SECRET": "bench-jwt-secret-of-at-least-32-bytes!",
        "WEBHOOK_ALLOW_PRIVATE_NETWORKS": "1",
        "WORKER_POLL_SECONDS": "0.05",
        "LOG_LEVEL": "WARNING",
        "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
    }
    os.environ.update(env)
    receiver = subprocess.Popen([sys.executable, "-c", RECEIVER], stdout=subprocess.PIPE, text=True)
    try:
        assert receiver.stdout is not None
        port = int(receiver.stdout.readline())
        result = run(args, env, f"http://127.0.0.1:{port}/hook")
    finally:
        receiver.terminate()
        receiver.wait()
        from django.db import connections

        connections.close_all()
        with psycopg.connect(ADMIN_URL, autocommit=True) as conn:
            conn.execute("SELECT pg_terminate_backend(pid) FROM pg_stat_activity WHERE datname = %s", [name])
            conn.execute(f'DROP DATABASE IF EXISTS "{name}"')
    write_json(args.json, result)


def run(args: argparse.Namespace, env: dict[str, str], url: str) -> dict[str, Any]:
    import django

    sys.path.insert(0, str(REPO))
    django.setup()
    from django.core.management import call_command

    call_command("migrate", verbosity=0)
    from flags.services import flag_create
    from kernel.context import acting_as
    from tenancy.models import Tenant
    from webhooks.models import WebhookDelivery
    from webhooks.services import webhook_create
    from webhooks.worker import Worker

    tenant = Tenant.objects.create(slug="bench", name="Bench")
    hook = webhook_create(tenant=tenant, data={"url": url, "events": ["flag.*"]}).webhook

    def make_events(prefix: str) -> None:
        with acting_as("system:bench"):
            for n in range(args.events):
                flag_create(tenant=tenant, actor="system:bench", data={"key": f"{prefix}-{n}"})

    fan_out_rates, send_rates, attempt_ms = [], [], []
    worker = Worker(batch=50)
    for round_ in range(args.rounds):
        make_events(f"r{round_}")
        started = time.perf_counter()
        made = worker.fan_out()
        fanned = time.perf_counter()
        sent = 0
        while step := worker.run_once():
            sent += step
        done = time.perf_counter()
        assert made == sent == args.events, (made, sent)
        fan_out_rates.append(made / (fanned - started))
        send_rates.append(sent / (done - fanned))
        durations = (
            WebhookDelivery.objects.for_tenant(tenant)
            .filter(event_id__gt=0)
            .values_list("duration_ms", flat=True)
        )
        attempt_ms.append(statistics.median(d for d in durations if d is not None))
    failed = WebhookDelivery.objects.for_tenant(tenant).exclude(status="succeeded").count()
    assert failed == 0, f"{failed} deliveries did not succeed"

    process_rates: dict[int, list[float]] = {1: [], 2: []}
    for round_ in range(args.process_rounds):
        for count in (1, 2):  # interleaved, so that both see the same load
            make_events(f"p{round_}-{count}")
            worker.fan_out()
            process_rates[count].append(drain_with_processes(env, count, tenant, hook.pk))

    rows = [
        ["fan-out (events → deliveries), in-process", f"{statistics.median(fan_out_rates):,.0f}/s"],
        ["attempts by 1 worker, in-process", f"{statistics.median(send_rates):,.0f} deliveries/s"],
        ["attempt duration (delivery log, median)", f"{statistics.median(attempt_ms):.0f} ms"],
        ["1 `run_worker` process", f"{statistics.median(process_rates[1]):,.0f} deliveries/s"],
        ["2 `run_worker` processes", f"{statistics.median(process_rates[2]):,.0f} deliveries/s"],
    ]
    print(header("Webhook deliveries to a loopback receiver (PostgreSQL)"))
    print(
        f"{args.events} events per round; {args.rounds} in-process rounds, {args.process_rounds} rounds of "
        "processes (medians); one webhook, `flag.*`; wall time\n"
    )
    print(table(["measure", "value"], rows))
    return {
        "fan_out_per_s": fan_out_rates,
        "deliveries_per_s": send_rates,
        "attempt_ms": attempt_ms,
        "processes": process_rates,
    }


def drain_with_processes(env: dict[str, str], count: int, tenant: Any, webhook_id: int) -> float:
    from webhooks.models import WebhookDelivery

    logs = [Path(f"/tmp/bench-webhooks-worker-{os.getpid()}-{n}.log") for n in range(count)]
    pending = WebhookDelivery.objects.for_tenant(tenant).filter(status="pending")
    total = pending.count()
    # The deliveries are due only once every worker is up: start-up is not what is measured.
    pending.update(next_attempt_at=None)
    workers = [
        subprocess.Popen(
            [sys.executable, "manage.py", "run_worker", "--batch", "20"],
            cwd=REPO,
            env={**env, "LOG_LEVEL": "INFO"},
            stdout=log.open("w"),
            stderr=subprocess.STDOUT,
        )
        for log in logs
    ]
    try:
        while not all("worker started" in log.read_text() for log in logs):
            time.sleep(0.05)
        from django.utils import timezone

        started = time.perf_counter()
        WebhookDelivery.objects.for_tenant(tenant).filter(status="pending").update(
            next_attempt_at=timezone.now()
        )
        while WebhookDelivery.objects.for_tenant(tenant).filter(status="pending").exists():
            time.sleep(0.02)
        elapsed = time.perf_counter() - started
    finally:
        for worker in workers:
            worker.terminate()
            worker.wait()
        for log in logs:
            log.unlink(missing_ok=True)
    return total / elapsed


if __name__ == "__main__":
    main()
