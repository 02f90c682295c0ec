"""The change reason (api.md, Safe change): the one reader of its text, whoever supplies it.

`X-Change-Reason` on an API write, the admin's "Reason for this change" field, `import_flags --reason`
and the kill switch all pass their text through `parse_change_reason`: trimmed, at most
`MAX_REASON_CHARS` characters, no NUL or other control character (a log line or a terminal must not be
spoofed by it). Empty after trimming is no reason at all (None).
"""

from __future__ import annotations

import unicodedata

from kernel.errors import Invalid

MAX_REASON_CHARS = 500
REASON_FIELD = "reason"
REASON_HEADER = "X-Change-Reason"
REASON_META = "HTTP_X_CHANGE_REASON"


def parse_change_reason(raw: str | None) -> str | None:
    """The reason's text, or None when none is given; a 422 naming `reason` when it is unacceptable."""
    if raw is None:
        return None
    text = raw.strip()
    if not text:
        return None
    if len(text) > MAX_REASON_CHARS:
        raise Invalid({REASON_FIELD: [f"at most {MAX_REASON_CHARS} characters; got {len(text)}"]})
    if any(unicodedata.category(char) in ("Cc", "Cs") for char in text):
        raise Invalid({REASON_FIELD: ["must not contain control characters (NUL, newline, tab, ...)"]})
    return text


def header_text(raw: str) -> str:
    """A header's value as the caller sent it: WSGI hands headers over as latin-1, so UTF-8 text
    (a reason in another language) arrives mis-decoded and is put right here when it can be."""
    try:
        return raw.encode("latin-1").decode("utf-8")
    except (UnicodeEncodeError, UnicodeDecodeError):
        return raw


def reason_missing() -> Invalid:
    """The one refusal of a write without a reason where one is required."""
    return Invalid({REASON_FIELD: ["required: say why you make this change (X-Change-Reason header)"]})
