"""One attempt to deliver one event: an HTTP POST signed as the Standard Webhooks specification says.

`webhook-id` is the event id (receivers drop duplicates by it: delivery is at least once),
`webhook-timestamp` the epoch seconds of this attempt, `webhook-signature` `v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">` made by the `standardwebhooks` library with the webhook's secret.

The request goes only to the addresses `destinations.pin` checked (never to a second DNS answer), with the
Host header and TLS SNI of the URL's name, so certificates are verified against the name. No redirect is
followed (a 3xx is a failure), proxies from the environment are ignored (they would connect elsewhere),
and at most 64 KiB of the answer is read. Only a 2xx counts, and only within the timeout (5 s by default),
which is a deadline for the whole attempt: resolving the name, connecting, sending, the status line, the
headers and the body together (api.md: "a 2xx within 5 s"). A slower answer is a failed attempt, retried.
"""

from __future__ import annotations

import asyncio
import ssl
import time
from dataclasses import dataclass
from datetime import UTC, datetime
from functools import cache

import certifi
import httpx
from django.conf import settings
from standardwebhooks.webhooks import Webhook as StandardWebhook

from webhooks.destinations import DestinationRefused, pin

MAX_RESPONSE_BYTES = 64 * 1024
USER_AGENT = "flagsvc-webhooks/1"
ERROR_CHARS = 500


@dataclass(frozen=True)
class Outcome:
    ok: bool
    status_code: int | None
    error: str
    duration_ms: int

    @classmethod
    def failure(cls, error: str, *, status_code: int | None = None, duration_ms: int = 0) -> Outcome:
        return cls(ok=False, status_code=status_code, error=_clip(error), duration_ms=duration_ms)


def tls_context() -> ssl.SSLContext:
    """The verifying TLS context for an attempt: the public CAs (certifi), plus the operator's own
    (`WEBHOOK_CA_BUNDLE`, for receivers behind a private CA). Certificates are always verified."""
    return _tls_context(settings.WEBHOOK_CA_BUNDLE or "")


@cache
def _tls_context(extra_bundle: str) -> ssl.SSLContext:
    """One context per bundle, kept: building one loads the CA bundle (~90 ms here), which would
    otherwise be most of an attempt's cost (benchmarks/RESULTS.md)."""
    context = ssl.create_default_context(cafile=certifi.where())
    if extra_bundle:
        context.load_verify_locations(cafile=extra_bundle)
    return context


def sign(*, secret: str, message_id: str, timestamp: datetime, body: str) -> str:
    return str(StandardWebhook(secret).sign(message_id, timestamp, body))


def send(*, url: str, secret: str, message_id: str, body: str, timeout: float) -> Outcome:
    """One attempt, which never takes much longer than `timeout` seconds and never raises for anything
    the URL or the receiver does: every such failure is an Outcome with the reason in `error`."""
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        pinned = pin(url)
    except DestinationRefused as error:
        return Outcome.failure(f"refused: {error}", duration_ms=elapsed_ms())
    destination = pinned.destination
    default_port = 443 if destination.scheme == "https" else 80
    host = f"[{destination.host}]" if ":" in destination.host else destination.host
    host_header = host if destination.port == default_port else f"{host}:{destination.port}"
    now = datetime.now(UTC)
    headers = {
        "Host": host_header,
        "Content-Type": "application/json",
        "User-Agent": USER_AGENT,
        "webhook-id": message_id,
        "webhook-timestamp": str(int(now.timestamp())),
        "webhook-signature": sign(secret=secret, message_id=message_id, timestamp=now, body=body),
    }
    request = _Request(
        urls=tuple(httpx.URL(url).copy_with(host=str(address)) for address in pinned.addresses),
        headers=headers,
        content=body.encode("utf-8"),
        extensions={"sni_hostname": destination.host} if destination.scheme == "https" else {},
        tls=tls_context(),
    )
    try:
        status_code, snippet = asyncio.run(_post(request, deadline=started + timeout, timeout=timeout))
    except (TimeoutError, httpx.TimeoutException):
        return Outcome.failure(
            f"timed out: no complete answer within the {timeout:g} s deadline "
            "(connecting, sending, the headers and the body together)",
            duration_ms=elapsed_ms(),
        )
    except httpx.HTTPError as error:
        return Outcome.failure(f"{type(error).__name__}: {error}", duration_ms=elapsed_ms())
    if 200 <= status_code < 300:
        return Outcome(ok=True, status_code=status_code, error="", duration_ms=elapsed_ms())
    reason = f"HTTP {status_code}"
    if 300 <= status_code < 400:
        reason += " (redirects are not followed)"
    if snippet:
        reason += f": {snippet}"
    return Outcome.failure(reason, status_code=status_code, duration_ms=elapsed_ms())


@dataclass(frozen=True)
class _Request:
    urls: tuple[httpx.URL, ...]  # the URL once per checked address, in the order to try them
    headers: dict[str, str]
    content: bytes
    extensions: dict[str, str]
    tls: ssl.SSLContext


async def _post(request: _Request, *, deadline: float, timeout: float) -> tuple[int, str]:
    """The status code and the start of the answer, all within the deadline (TimeoutError if not).

    httpx's timeout bounds each network operation, not the request (encode/httpx#1450): a receiver that
    drips its status line a byte at a time never trips it. `asyncio.timeout` cancels the attempt wherever
    it is waiting once the deadline passes, so it also covers a second address tried after the first
    refused the connection; httpx's own timeout stays as the bound of each step."""
    async with (
        asyncio.timeout(max(deadline - time.monotonic(), 0.0)),
        httpx.AsyncClient(
            timeout=httpx.Timeout(timeout), follow_redirects=False, trust_env=False, verify=request.tls
        ) as client,
    ):
        for index, url in enumerate(request.urls):
            try:
                async with client.stream(
                    "POST",
                    url,
                    content=request.content,
                    headers=request.headers,
                    extensions=request.extensions,
                ) as response:
                    return response.status_code, await _read_capped(response)
            except httpx.ConnectError:
                if index + 1 == len(request.urls):
                    raise
                # nothing was sent: the next checked address
    raise httpx.ConnectError("no address to connect to")


async def _read_capped(response: httpx.Response) -> str:
    """The start of the answer, for the error; at most MAX_RESPONSE_BYTES are read (the deadline of
    `_post` bounds how long that may take)."""
    received = bytearray()
    async for chunk in response.aiter_raw():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES:
            break
    return bytes(received[:ERROR_CHARS]).decode("utf-8", errors="replace").strip()


def _clip(text: str) -> str:
    """`text` fit for `last_error` and a log line: control characters escaped (PostgreSQL refuses a NUL
    in a text column, and a receiver's body or an exception message may hold one), at most ERROR_CHARS."""
    shown = "".join(char if char.isprintable() else repr(char)[1:-1] for char in text)
    return shown if len(shown) <= ERROR_CHARS else shown[: ERROR_CHARS - 1] + "…"
