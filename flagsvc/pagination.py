from rest_framework.pagination import LimitOffsetPagination


class LimitOffsetPage(LimitOffsetPagination):
    """`?limit=&offset=`: 50 by default, larger limits capped at 200 (api.md)."""

    default_limit = 50
    max_limit = 200
