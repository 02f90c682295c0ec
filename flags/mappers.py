"""ORM rows → the plain documents the engine compiles."""

from __future__ import annotations

from typing import Any

from flags.models import Flag


def flag_to_engine(flag: Flag) -> dict[str, Any]:
    return {**flag.content(), "version": flag.version}
