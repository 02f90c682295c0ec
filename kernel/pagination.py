from __future__ import annotations

from rest_framework.pagination import LimitOffsetPagination
from rest_framework.request import Request

from kernel.query_params import whole_number_param


class LimitOffsetPage(LimitOffsetPagination):
    """`?limit=&offset=`: 50 by default, larger limits capped at 200 (api.md).

    A limit below 1, a negative offset or anything but digits is a 422 naming the parameter; DRF
    would quietly serve the first page instead.
    """

    default_limit = 50
    max_limit = 200

    def get_limit(self, request: Request) -> int:
        limit = whole_number_param(request, self.limit_query_param, minimum=1, cap=self.max_limit)
        return self.default_limit if limit is None else limit

    def get_offset(self, request: Request) -> int:
        return whole_number_param(request, self.offset_query_param, minimum=0) or 0
