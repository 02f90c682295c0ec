"""How a segment reads in words on its read-only page, told by the app that owns the admin's words.

The same inversion as `segments.usage`: the words for operators and groups live with the flag admin
(`flags.admin.vocabulary`, `flags.admin.in_words`), above this app, so `flags` registers its renderer in
`AppConfig.ready` and the segment admin asks here.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from django.utils.html import format_html
from django.utils.safestring import SafeString

SegmentWords = Callable[[Mapping[str, Any]], SafeString]

_registered: list[SegmentWords] = []


def register_segment_words(words: SegmentWords) -> None:
    """Called once by the app that renders conditions in words (flags, in its `AppConfig.ready`)."""
    if _registered and _registered[0] is not words:
        raise RuntimeError("The words of segments are registered already.")
    _registered[:] = [words]


def segment_in_words(document: Mapping[str, Any]) -> SafeString:
    if not _registered:
        return format_html("{}", "(no renderer registered)")
    return _registered[0](document)
