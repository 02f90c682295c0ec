from __future__ import annotations

from typing import Any

from rest_framework.pagination import LimitOffsetPagination

from flagsvc.errors import Invalid

MAX_OFFSET = 10**9


def _page_number(request: Any, name: str, *, minimum: int) -> int | None:
    raw = request.query_params.get(name)
    if raw is None or raw == "":
        return None
    if not (raw.isascii() and raw.isdigit()) or len(raw) > 10 or not minimum <= int(raw) <= MAX_OFFSET:
        raise Invalid({name: [f"An integer from {minimum} to {MAX_OFFSET:,}."]})
    return int(raw)


class LimitOffsetPage(LimitOffsetPagination):
    """`?limit=&offset=`: 50 by default, larger limits capped at 200 (api.md).

    DRF quietly replaces a negative or non-numeric value by the default; we refuse it (422 naming the
    parameter) so a client's bug shows instead of paging from the start.
    """

    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Any) -> int | None:
        limit = _page_number(request, self.limit_query_param, minimum=1)
        return self.default_limit if limit is None else min(limit, self.max_limit)

    def get_offset(self, request: Any) -> int:
        return _page_number(request, self.offset_query_param, minimum=0) or 0
