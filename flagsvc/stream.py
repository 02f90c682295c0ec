"""The stream process: Django's ASGI application under uvicorn, for `GET /v1/events` (ADR 0012).

    python -m flagsvc.stream        # `make run` starts it next to gunicorn; Docker as its own service

It serves the whole application (the same URLs, middleware, authentication and errors as gunicorn),
but exists for the Server-Sent Events stream: one event loop holds every subscriber, where a gunicorn
thread could hold only one. The proxy in front (deploy/nginx.conf) sends `/v1/events` here and
everything else to gunicorn. Listens on `EVENTS_HOST:EVENTS_PORT` (default `HOST`, `PORT` + 1).
"""

from __future__ import annotations

import os


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
    import django
    import uvicorn
    from django.conf import settings

    django.setup()
    uvicorn.run(
        "flagsvc.asgi:application",
        host=settings.EVENTS_HOST,
        port=settings.EVENTS_PORT,
        lifespan="off",
        access_log=False,  # the application logs one JSON line per request, as under gunicorn
        log_config=None,  # flagsvc.logging's JSON lines
        backlog=settings.EVENTS_BACKLOG,
        timeout_keep_alive=5,
        # Open streams never end by themselves: on SIGTERM they are closed after this many seconds
        # (clients reconnect with Last-Event-ID and lose nothing).
        timeout_graceful_shutdown=settings.EVENTS_GRACEFUL_TIMEOUT,
        proxy_headers=False,  # the client address is kernel.client_address's business (TRUSTED_PROXIES)
    )


if __name__ == "__main__":
    main()
