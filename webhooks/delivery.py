"""One attempt to deliver one event: an HTTP POST signed as the Standard Webhooks specification says.

`webhook-id` is the event id (receivers drop duplicates by it: delivery is at least once),
`webhook-timestamp` the epoch seconds of this attempt, `webhook-signature` `v1,<base64 HMAC-SHA256 of
"{id}.{timestamp}.{body}">` made by the `standardwebhooks` library with the webhook's secret.

The request goes only to the addresses `destinations.pin` checked (never to a second DNS answer), with the
Host header and TLS SNI of the URL's name, so certificates are verified against the name. No redirect is
followed (a 3xx is a failure), proxies from the environment are ignored (they would connect elsewhere),
each phase has the timeout (5 s by default), and at most 64 KiB of the answer is read. Only a 2xx counts.
"""

from __future__ import annotations

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
    started = time.monotonic()

    def elapsed_ms() -> int:
        return int((time.monotonic() - started) * 1000)

    try:
        pinned = pin(url)
    except DestinationRefused as error:
        return Outcome(ok=False, status_code=None, error=_clip(f"refused: {error}"), duration_ms=elapsed_ms())
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
    extensions = {"sni_hostname": destination.host} if destination.scheme == "https" else {}
    content = body.encode("utf-8")
    for index, address in enumerate(pinned.addresses):
        request_url = httpx.URL(url).copy_with(host=str(address))
        try:
            with (
                httpx.Client(
                    timeout=httpx.Timeout(timeout),
                    follow_redirects=False,
                    trust_env=False,
                    verify=tls_context(),
                ) as client,
                client.stream(
                    "POST", request_url, content=content, headers=headers, extensions=extensions
                ) as response,
            ):
                snippet = _read_capped(response, deadline=started + timeout)
                status_code = response.status_code
            break
        except httpx.ConnectError as error:
            if index + 1 < len(pinned.addresses):
                continue  # nothing was sent: the next checked address
            return Outcome(
                ok=False, status_code=None, error=_clip(f"ConnectError: {error}"), duration_ms=elapsed_ms()
            )
        except httpx.TimeoutException:
            return Outcome(
                ok=False,
                status_code=None,
                error=f"timed out (no answer within {timeout:g} s)",
                duration_ms=elapsed_ms(),
            )
        except httpx.HTTPError as error:
            return Outcome(
                ok=False,
                status_code=None,
                error=_clip(f"{type(error).__name__}: {error}"),
                duration_ms=elapsed_ms(),
            )
    if 200 <= status_code < 300:
        return Outcome(ok=True, status_code=status_code, error="", duration_ms=elapsed_ms())
    reason = f"HTTP {status_code}"
    if 300 <= status_code < 400:
        reason += " (redirects are not followed)"
    if snippet:
        reason += f": {snippet}"
    return Outcome(ok=False, status_code=status_code, error=_clip(reason), duration_ms=elapsed_ms())


def _read_capped(response: httpx.Response, *, deadline: float) -> str:
    """At most MAX_RESPONSE_BYTES of the answer, and nothing once the deadline has passed."""
    received = bytearray()
    for chunk in response.iter_raw():
        received += chunk
        if len(received) >= MAX_RESPONSE_BYTES or time.monotonic() > deadline:
            break
    return bytes(received[:ERROR_CHARS]).decode("utf-8", errors="replace").strip()


def _clip(text: str) -> str:
    return text if len(text) <= ERROR_CHARS else text[: ERROR_CHARS - 1] + "…"
