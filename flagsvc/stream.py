"""The stream process: Django's ASGI application under uvicorn, for `GET /v1/events` (ADR 0012).

    python -m flagsvc.stream        # `make run` starts it next to gunicorn; Docker as its own service

It serves the whole application (the same URLs, middleware, authentication and errors as gunicorn),
but exists for the Server-Sent Events stream: one event loop holds every subscriber, where a gunicorn
thread could hold only one. The proxy in front (deploy/nginx.conf) sends `/v1/events` here and
everything else to gunicorn. Listens on `EVENTS_HOST:EVENTS_PORT` (default `HOST`, `PORT` + 1).
"""

from __future__ import annotations

import asyncio
import os
from collections.abc import Awaitable, Callable, Mapping
from typing import Any

Scope = dict[str, Any]
Message = Mapping[str, Any]
Receive = Callable[[], Awaitable[Message]]
Send = Callable[[Message], Awaitable[None]]
App = Callable[[Scope, Receive, Send], Awaitable[None]]


def limit_starting_requests(app: App, limit: int) -> App:
    """At most `limit` requests between arriving and sending their response's status line.

    Django runs each ASGI request's synchronous part (DRF, the authentication and the stream's first
    read) in a thread of its own, with a database connection of its own. A thousand subscribers that
    connect at once would open a thousand connections (PostgreSQL refuses past `max_connections`);
    this bounds them. A stream's request releases its place as its stream starts.
    """
    places: asyncio.Semaphore | None = None

    async def limited(scope: Scope, receive: Receive, send: Send) -> None:
        nonlocal places
        if scope["type"] != "http":
            await app(scope, receive, send)
            return
        if places is None:
            places = asyncio.Semaphore(limit)
        semaphore = places
        await semaphore.acquire()
        held = True

        async def send_and_release(message: Message) -> None:
            nonlocal held
            if held and message["type"] == "http.response.start":
                held = False
                semaphore.release()
            await send(message)

        try:
            await app(scope, receive, send_and_release)
        finally:
            if held:
                semaphore.release()

    return limited


def build() -> App:
    """The stream process's application: Django's ASGI application, its starts bounded."""
    from django.conf import settings
    from django.core.asgi import get_asgi_application

    return limit_starting_requests(get_asgi_application(), settings.EVENTS_STARTING_REQUESTS)


def main() -> None:
    os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
    import django
    import uvicorn
    from django.conf import settings

    django.setup()
    uvicorn.run(
        "flagsvc.stream:build",
        factory=True,
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
