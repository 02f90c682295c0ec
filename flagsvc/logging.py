"""JSON log lines with the request context, and a last line of defence against leaked secrets.

Every line is one JSON object (api.md, Operations): `timestamp`, `level`, `logger`, `message`,
`request_id`, `tenant`, `actor`, the record's `extra` fields and, for an error, `exception` with the
stack. No code of ours logs a token, secret, password or `Authorization` header; `redact()` runs over
every finished line anyway, so that a stray one in an exception message or a third-party log call is
masked before it reaches stdout.
"""

from __future__ import annotations

import json
import logging
import logging.config
import re
import traceback
from datetime import UTC, datetime
from typing import Any

from kernel import context

REQUEST_LOG_FIELDS = frozenset(
    {
        "timestamp",
        "level",
        "message",
        "method",
        "path",
        "status",
        "duration_ms",
        "request_id",
        "tenant",
        "actor",
    }
)
"""The fields every request's log line carries (api.md, Operations)."""

_STANDARD = set(logging.LogRecord("", 0, "", 0, "", (), None).__dict__) | {"message", "asctime"}

REDACTED = "[REDACTED]"

# A credential-looking key followed by its value, also inside a JSON-encoded string (`\"key\": \"v\"`).
_SECRET_KEYS = (
    r"client_secret|secret|password|passwd|token|api[_-]?key|sessionid|csrftoken|csrfmiddlewaretoken|cookie"
)
_KEY_PREFIX = r"(?:\\?[\"'])?\s*[:=]\s*(?:\\?[\"'])?"

_SECRET_PATTERNS = [
    # The whole value of an Authorization header, whatever its scheme ("Bearer x", "Basic y").
    re.compile(rf"(?i)((?:proxy-)?authorization{_KEY_PREFIX})[^\"'\\\r\n,}}]+"),
    re.compile(r"(?i)(\bbearer\s+)[A-Za-z0-9._~+/=-]+"),
    re.compile(r"(?i)(\bbasic\s+)[A-Za-z0-9+/=]{8,}"),
    # A JWT anywhere: three base64url parts, the first one starting with `{"`.
    re.compile(r"()eyJ[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]{5,}\.[A-Za-z0-9_-]*"),
    re.compile(rf"(?i)((?:{_SECRET_KEYS}){_KEY_PREFIX})(?!\[REDACTED\])[^\"'\\\s,;&}}]+"),
]


# Every pattern above needs one of these words; a line without any (most lines) is left alone after
# a few substring tests instead of five regex substitutions (the request log line's cost halves, benchmarks/RESULTS.md).
_SECRET_HINTS = (
    "authorization", "bearer", "basic", "eyj", "secret", "passw", "token",
    "apikey", "api_key", "api-key", "sessionid", "csrf", "cookie",
)  # fmt: skip


def redact(text: str) -> str:
    """Mask credentials in a finished log line; everything else is left as it is."""
    lowered = text.lower()
    if not any(hint in lowered for hint in _SECRET_HINTS):
        return text
    for pattern in _SECRET_PATTERNS:
        text = pattern.sub(lambda m: m.group(1) + REDACTED, text)
    return text


class JsonFormatter(logging.Formatter):
    """One JSON object per record, on one line."""

    def format(self, record: logging.LogRecord) -> str:
        payload: dict[str, Any] = {
            "timestamp": datetime.fromtimestamp(record.created, tz=UTC).isoformat().replace("+00:00", "Z"),
            "level": record.levelname,
            "logger": record.name,
            "message": record.getMessage(),
            "request_id": context.current_request_id.get(),
        }
        for key, value in record.__dict__.items():
            if key not in _STANDARD and not key.startswith("_"):
                payload[key] = value
        payload.setdefault("tenant", context.current_tenant.get())
        payload.setdefault("actor", context.current_actor.get())
        if record.exc_info:
            payload["exception"] = "".join(traceback.format_exception(*record.exc_info))
        if record.stack_info:
            payload["stack"] = record.stack_info
        return redact(json.dumps(payload, default=str))


class ExpectedRefusal(logging.Filter):
    """A refusal the caller caused, such as a `Host` the service does not serve: Django logs it at
    ERROR with a traceback, which says nothing about our code and drowned the real errors when a
    scanner or a misconfigured probe came by. It stays one WARNING line (the access line has the 400)."""

    def filter(self, record: logging.LogRecord) -> bool:
        record.levelno, record.levelname = logging.WARNING, "WARNING"
        record.exc_info = record.exc_text = None
        record.__dict__.pop("request", None)  # a WSGIRequest, shown as its repr; the access line has it
        return True


def configure(config: dict[str, Any]) -> None:
    """Django's LOGGING_CONFIG: the LOGGING dict, and Python warnings routed into it as JSON lines too."""
    logging.config.dictConfig(config)
    logging.captureWarnings(True)
    # No line prints the caller, thread or process; not collecting them makes every record cheaper
    # (the Python logging HOWTO, "Optimization").
    logging._srcfile = None
    logging.logThreads = False
    logging.logProcesses = False
    logging.logMultiprocessing = False
