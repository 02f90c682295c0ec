"""Query parameters of `/v1` routes: every filter, flag and page parameter is read through
`query_param`, so that none reaches a query with a NUL character (PostgreSQL refuses it: a 500)."""

from __future__ import annotations

from django.http import HttpRequest
from flagsvc_sdk.engine import MAX_SAFE_INTEGER, validate_json
from rest_framework.request import Request

from kernel.errors import Invalid


def query_param(request: Request | HttpRequest, name: str) -> str | None:
    """The parameter's text, None when absent or empty; a 422 naming it when it is not storable
    text (the rule of request bodies: `kernel.json_input`)."""
    params = request.query_params if isinstance(request, Request) else request.GET
    raw = params.get(name)
    if raw is None or raw == "":
        return None
    validate_json(raw, root=name)
    return raw


def whole_number_param(
    request: Request | HttpRequest, name: str, *, minimum: int, cap: int | None = None
) -> int | None:
    """A whole number of decimal digits, at least `minimum`; None when absent or empty (`?offset=`
    means "not given", as every query parameter does: the schema says `allowEmptyValue`). A larger
    number than `cap` is read as `cap`; without a cap, one past 2**53 - 1 (the largest every client
    holds exactly) is a 422, as it is in a body."""
    raw = query_param(request, name)
    if raw is None:
        return None
    if not (raw.isascii() and raw.isdigit()):
        raise Invalid({name: [f"must be a whole number of at least {minimum}; got {raw[:20]!r}"]})
    limit = MAX_SAFE_INTEGER if cap is None else cap
    if len(raw.lstrip("0")) > len(str(limit)) or int(raw) > limit:
        if cap is not None:
            return cap
        raise Invalid({name: [f"must be at most {MAX_SAFE_INTEGER}"]})
    number = int(raw)
    if number < minimum:
        raise Invalid({name: [f"must be a whole number of at least {minimum}; got {number}"]})
    return number
