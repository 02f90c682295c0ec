"""The Server-Sent Events stream of a tenant's change events (api.md, Change events; ADR 0012).

Served by the stream process (Django's ASGI application under uvicorn, `flagsvc.asgi`), where one
event loop holds every subscriber: `async_events`. Each process keeps one `Hub`: per tenant that has
subscribers, the recent events it read from the outbox, fetched once per process whatever the
number of subscribers, and woken

- by Redis pub/sub (`audit.outbox.announce`) when `REDIS_URL` is set, at once after the writer's
  commit, whichever process or machine served the write; and by a slow outbox poll
  (`EVENTS_POLL_INTERVAL_WITH_REDIS`) that only covers a lost message;
- without Redis, by reading the outbox every `EVENTS_POLL_INTERVAL` seconds (one indexed query per
  tenant served, per process).

The database is the only source of the events: Redis only says "look". A subscriber further behind
than the hub's memory reads the outbox itself. It sends each event once, in cursor order: it keeps its
own cursor and takes only what comes after it.

Under WSGI (gunicorn's threads) the same route streams from `sync_events`, which holds a thread and a
database connection per subscriber and reads the outbox every `EVENTS_POLL_INTERVAL`: correct, but
bounded by the worker's threads. It is the model ADR 0012 measured against and rejected for scale.
"""

from __future__ import annotations

import asyncio
import bisect
import contextlib
import json
import logging
import time
from collections.abc import AsyncIterator, Callable, Iterator
from typing import Any, TypeVar

from asgiref.sync import sync_to_async
from django.conf import settings
from django.db import DatabaseError, connection

from audit.events import event_document, event_type
from audit.models import ChangeEvent
from audit.outbox import ResumePoint, events_after, events_channel, latest_cursor

logger = logging.getLogger("flagsvc.events")
T = TypeVar("T")

FETCH_BATCH = 500
HUB_MEMORY = 2000
"""Events per tenant a stream process keeps in memory for subscribers that fall a little behind."""
OPENING = b": events\n\n"
"""Sent first, so that the client (and a proxy) sees the stream open at once."""
KEEP_ALIVE = b": keep-alive\n\n"


def event_frame(event: ChangeEvent) -> bytes:
    """One event in the SSE format: `id`, `event` and `data` lines, then a blank line."""
    data = json.dumps(event_document(event), separators=(",", ":"), ensure_ascii=False)
    kind = event_type(event.entity, event.action)
    return f"id: {event.pk}\nevent: {kind}\ndata: {data}\n\n".encode()


def reset_frame(cursor: int) -> bytes:
    """`event: reset`: the events after the client's cursor may be gone; refetch the snapshot and go
    on from `cursor` (its `id`, so that a reconnecting EventSource resumes from there)."""
    data = json.dumps({"next": str(cursor)}, separators=(",", ":"))
    return f"id: {cursor}\nevent: reset\ndata: {data}\n\n".encode()


def _frames_after(tenant_id: int, cursor: int) -> list[tuple[int, bytes]]:
    return [(event.pk, event_frame(event)) for event in events_after(tenant_id, cursor, FETCH_BATCH)]


def _read_outbox(tenant_id: int, cursor: int) -> list[tuple[int, bytes]]:
    """The frames after `cursor`, from a pool thread of the stream process. Its connection stays open
    between reads (they come several times a second); one that broke is closed, to be opened again."""
    try:
        return _frames_after(tenant_id, cursor)
    except DatabaseError:
        connection.close()
        raise


# The async stream ---------------------------------------------------------------------------------


async def _in_pool(function: Callable[..., T], *args: Any) -> T:
    """Run a database read in the loop's small shared pool of threads (a few connections for the
    whole process), not in the thread Django gives each ASGI request: a stream's request lasts as
    long as the stream, and its thread and connection would be held all that time."""
    return await sync_to_async(function, thread_sensitive=False)(*args)


class _Feed:
    """One tenant's events as this process knows them: all of those in (floor, last], in order."""

    def __init__(self, last: int) -> None:
        self.floor = last
        self.last = last
        self.ids: list[int] = []
        self.frames: list[bytes] = []
        self.waiters: set[asyncio.Event] = set()
        self.refreshing: asyncio.Task[None] | None = None
        self.again = False

    def since(self, cursor: int) -> list[tuple[int, bytes]] | None:
        """The frames after `cursor`, or None when they are older than this feed's memory.

        Every subscriber of the tenant asks on every event: a binary search, not a scan."""
        if cursor < self.floor:
            return None
        start = bisect.bisect_right(self.ids, cursor)
        return list(zip(self.ids[start:], self.frames[start:], strict=True))

    def add(self, frames: list[tuple[int, bytes]]) -> None:
        for event_id, frame in frames:
            self.ids.append(event_id)
            self.frames.append(frame)
        if len(self.ids) > 2 * HUB_MEMORY:  # forget the older half at once, not one by one
            cut = len(self.ids) - HUB_MEMORY
            self.floor = self.ids[cut - 1]
            del self.ids[:cut], self.frames[:cut]
        if frames:
            self.last = frames[-1][0]
            for waiter in self.waiters:
                waiter.set()


class Hub:
    """The subscribers of one stream process, and what wakes them (see the module docstring)."""

    def __init__(self) -> None:
        self.feeds: dict[int, _Feed] = {}
        self._tasks: list[asyncio.Task[None]] = []
        self._loop: asyncio.AbstractEventLoop | None = None

    def _start(self) -> None:
        loop = asyncio.get_running_loop()
        if self._loop is loop:
            return
        self._loop = loop
        self.feeds.clear()
        self._tasks = [loop.create_task(self._poll()), loop.create_task(self._tick())]
        if settings.REDIS_URL:
            self._tasks.append(loop.create_task(self._listen()))

    async def join(self, tenant_id: int, waiter: asyncio.Event) -> _Feed:
        self._start()
        feed = self.feeds.get(tenant_id)
        if feed is None:
            last = await _in_pool(latest_cursor, tenant_id)
            feed = self.feeds.get(tenant_id)  # another subscriber may have made it meanwhile
            if feed is None:
                feed = self.feeds[tenant_id] = _Feed(last)
        feed.waiters.add(waiter)
        return feed

    def leave(self, tenant_id: int, waiter: asyncio.Event) -> None:
        feed = self.feeds.get(tenant_id)
        if feed is None:
            return
        feed.waiters.discard(waiter)
        if not feed.waiters and feed.refreshing is None:
            del self.feeds[tenant_id]

    def poke(self, tenant_id: int) -> None:
        """The tenant may have new events: read them once (again, if a read is under way)."""
        feed = self.feeds.get(tenant_id)
        if feed is None:
            return
        if feed.refreshing is not None:
            feed.again = True
            return
        assert self._loop is not None
        feed.refreshing = self._loop.create_task(self._refresh(tenant_id, feed))

    async def _refresh(self, tenant_id: int, feed: _Feed) -> None:
        try:
            while True:
                feed.again = False
                try:
                    frames = await _in_pool(_read_outbox, tenant_id, feed.last)
                except DatabaseError:
                    logger.warning("the outbox cannot be read; retrying", exc_info=True)
                    return
                feed.add(frames)
                if len(frames) < FETCH_BATCH and not feed.again:
                    return
        finally:
            feed.refreshing = None
            if not feed.waiters and self.feeds.get(tenant_id) is feed:
                del self.feeds[tenant_id]

    async def _poll(self) -> None:
        interval = (
            settings.EVENTS_POLL_INTERVAL_WITH_REDIS if settings.REDIS_URL else settings.EVENTS_POLL_INTERVAL
        )
        while True:
            await asyncio.sleep(interval)
            for tenant_id in list(self.feeds):
                self.poke(tenant_id)

    async def _tick(self) -> None:
        """Wake every subscriber each half keep-alive interval: one quiet for half of it or more sends
        a comment, so none is quiet for a whole interval."""
        while True:
            await asyncio.sleep(settings.EVENTS_KEEPALIVE_SECONDS / 2)
            for feed in list(self.feeds.values()):
                for waiter in feed.waiters:
                    waiter.set()

    async def _listen(self) -> None:
        """Redis pub/sub: a message names a tenant with new committed events. Reconnects forever."""
        import redis.asyncio as aioredis

        while True:
            client = aioredis.from_url(settings.REDIS_URL)
            try:
                async with client.pubsub() as pubsub:
                    await pubsub.subscribe(events_channel())
                    for tenant_id in list(self.feeds):  # what was announced while we were away
                        self.poke(tenant_id)
                    async for message in pubsub.listen():
                        if message.get("type") == "message":
                            with contextlib.suppress(ValueError):
                                self.poke(int(message["data"]))
            except asyncio.CancelledError:
                raise
            except Exception:
                logger.warning("redis pub/sub lost; the outbox poll delivers meanwhile", exc_info=True)
            finally:
                with contextlib.suppress(Exception):
                    await client.aclose()
            await asyncio.sleep(1.0)


HUB = Hub()


async def async_events(tenant_id: int, start: ResumePoint) -> AsyncIterator[bytes]:
    """The stream of one subscriber: `reset` if due, then every event after its cursor, in order,
    once each, and a comment whenever it was quiet for `EVENTS_KEEPALIVE_SECONDS`.

    It sleeps on its own `asyncio.Event`, which the hub sets on new events and on its keep-alive tick
    (every half interval), so a wake-up costs no timer or task of its own: with a thousand
    subscribers that is most of the fan-out's cost."""
    yield OPENING
    if start.reset:
        yield reset_frame(start.cursor)
    cursor = start.cursor
    half = settings.EVENTS_KEEPALIVE_SECONDS / 2
    sent_at = time.monotonic()
    waiter = asyncio.Event()
    feed = await HUB.join(tenant_id, waiter)
    try:
        while True:
            waiter.clear()
            frames = feed.since(cursor)
            if frames is None:  # further behind than the hub remembers: read the outbox itself
                frames = await _in_pool(_read_outbox, tenant_id, cursor)
            if frames:
                yield b"".join(frame for _, frame in frames)
                cursor = frames[-1][0]
                sent_at = time.monotonic()
                continue
            if time.monotonic() - sent_at >= half:
                yield KEEP_ALIVE
                sent_at = time.monotonic()
            await waiter.wait()
    finally:
        HUB.leave(tenant_id, waiter)


# The thread-per-subscriber stream (WSGI) ----------------------------------------------------------


def sync_events(tenant_id: int, start: ResumePoint) -> Iterator[bytes]:
    """The same stream for a WSGI server: this thread reads the outbox every `EVENTS_POLL_INTERVAL`."""
    yield OPENING
    if start.reset:
        yield reset_frame(start.cursor)
    cursor = start.cursor
    quiet_since = time.monotonic()
    while True:
        frames = _frames_after(tenant_id, cursor)
        if frames:
            yield b"".join(frame for _, frame in frames)
            cursor = frames[-1][0]
            quiet_since = time.monotonic()
            continue
        if time.monotonic() - quiet_since >= settings.EVENTS_KEEPALIVE_SECONDS:
            yield KEEP_ALIVE
            quiet_since = time.monotonic()
        time.sleep(settings.EVENTS_POLL_INTERVAL)


def stream_headers() -> dict[str, Any]:
    return {"Cache-Control": "no-cache", "X-Accel-Buffering": "no"}
