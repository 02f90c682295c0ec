"""A tenant's change policy: the one home of "this tenant requires a reason for every change".

Called where a person or an API client asks for a change: the API base view (`TenantAPIView`), the
admin's change forms and list actions, and `import_flags`. Automation acting on a plan a person made
(a scheduled rollout's worker) is not asked: the plan's own creation carried the reason.
"""

from __future__ import annotations

from kernel.change_reason import reason_missing
from tenancy.models import Tenant

WRITE_SCOPES = frozenset({"admin", "flags:approve"})


def is_write_scope(scope: str | None) -> bool:
    """Whether a route needing `scope` changes something (POST /v1/evaluate needs `evaluate`: a read)."""
    return scope is not None and (scope.endswith(":write") or scope in WRITE_SCOPES)


def require_reason_by_policy(tenant: Tenant, reason: str | None) -> None:
    """Refuse (422 naming `reason`) a change without a reason when the tenant requires one."""
    if tenant.require_change_reason and not reason:
        raise reason_missing()
