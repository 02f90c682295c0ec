"""ORM rows → the plain documents the engine compiles."""

from __future__ import annotations

from typing import Any

from segments.models import Segment


def segment_to_engine(segment: Segment) -> dict[str, Any]:
    return segment.content()
