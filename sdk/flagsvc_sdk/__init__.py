"""flagsvc SDK: ``FlagClient`` evaluates flags locally from the service's signed snapshot, with the
pure evaluation engine (``flagsvc_sdk.engine``) that the server itself uses.

``flagsvc_sdk.engine`` is imported without the client's dependencies; ``FlagClient`` is imported on
first use, so the server (which needs only the engine) never loads httpx or cryptography.
"""

from __future__ import annotations

from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from flagsvc_sdk.client import FlagClient

__all__ = ["FlagClient"]


def __getattr__(name: str) -> Any:
    if name == "FlagClient":
        from flagsvc_sdk.client import FlagClient

        return FlagClient
    raise AttributeError(name)
