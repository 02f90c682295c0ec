from __future__ import annotations

from django.contrib import admin
from django.http import HttpRequest, HttpResponse
from django.urls import include, path, re_path
from django.views import defaults
from drf_spectacular.views import SpectacularJSONAPIView, SpectacularRedocView, SpectacularSwaggerView

from audit.api.events import EventsView
from audit.api.views import AuditListView
from evaluation.admin_views import flag_preview_new_view, flag_preview_view, playground_view
from evaluation.api.ofrep import OfrepFlagsView, OfrepFlagView
from evaluation.api.snapshot import SnapshotKeysView, SnapshotView
from evaluation.api.views import (
    EvaluatePreviewView,
    ExposureReportView,
    UsageReportView,
    evaluate_bulk_view,
    evaluate_view,
)
from flags.api.change_requests import (
    ChangeRequestApplyView,
    ChangeRequestApproveView,
    ChangeRequestCollectionView,
    ChangeRequestDetailView,
    ChangeRequestRejectView,
)
from flags.api.killswitch import KillSwitchCollectionView, KillSwitchDetailView
from flags.api.views import (
    FlagCollectionView,
    FlagDetailView,
    FlagRestoreView,
    FlagRollbackView,
    FlagVersionsView,
)
from flags.rollouts.api import AutomationView, RolloutActionView, RolloutCollectionView, RolloutDetailView
from flagsvc import ops_views
from flagsvc.admin_site import permission_denied
from kernel.errors import error_response, is_api_path
from segments.api.views import SegmentCollectionView, SegmentDetailView
from tenancy.api.views import TokenView
from webhooks.api.views import (
    WebhookCollectionView,
    WebhookDeliveriesView,
    WebhookDetailView,
    WebhookRedeliverView,
    WebhookRotateSecretView,
)

KEY = r"(?P<key>[A-Za-z0-9][A-Za-z0-9._-]{0,127})"
WEBHOOK = r"(?P<webhook_id>[0-9]{1,18})"
CHANGE_REQUEST = r"(?P<cr_id>[0-9]{1,18})"
PLAN = r"(?P<plan_id>[0-9]{1,18})"


def api_not_found(request: HttpRequest, *args: object, **kwargs: object) -> HttpResponse:
    return error_response("not_found", f"No route {request.method} {request.path}.", 404)


def bad_request(request: HttpRequest, exception: Exception) -> HttpResponse:
    """Django's own 400s (a `Host` not in `ALLOWED_HOSTS`, another suspicious request) are JSON under
    `/v1`, as every answer there is; elsewhere (the admin) Django's page."""
    if is_api_path(request):
        return error_response("malformed_request", "The request was refused as malformed.", 400)
    return defaults.bad_request(request, exception)


handler400 = bad_request
handler403 = permission_denied

v1 = [
    re_path(r"^auth/token/?$", TokenView.as_view(), name="auth-token"),
    re_path(r"^flags/?$", FlagCollectionView.as_view(), name="flags"),
    re_path(rf"^flags/{KEY}/?$", FlagDetailView.as_view(), name="flag-detail"),
    re_path(rf"^flags/{KEY}/restore/?$", FlagRestoreView.as_view(), name="flag-restore"),
    re_path(rf"^flags/{KEY}/versions/?$", FlagVersionsView.as_view(), name="flag-versions"),
    re_path(rf"^flags/{KEY}/rollback/?$", FlagRollbackView.as_view(), name="flag-rollback"),
    re_path(r"^killswitch/?$", KillSwitchCollectionView.as_view(), name="killswitches"),
    re_path(r"^killswitch/(?P<category>[^/]{1,200})/?$", KillSwitchDetailView.as_view(), name="killswitch"),
    re_path(r"^change-requests/?$", ChangeRequestCollectionView.as_view(), name="change-requests"),
    re_path(
        rf"^change-requests/{CHANGE_REQUEST}/?$", ChangeRequestDetailView.as_view(), name="change-request"
    ),
    re_path(
        rf"^change-requests/{CHANGE_REQUEST}/approve/?$",
        ChangeRequestApproveView.as_view(),
        name="cr-approve",
    ),
    re_path(
        rf"^change-requests/{CHANGE_REQUEST}/reject/?$", ChangeRequestRejectView.as_view(), name="cr-reject"
    ),
    re_path(
        rf"^change-requests/{CHANGE_REQUEST}/apply/?$", ChangeRequestApplyView.as_view(), name="cr-apply"
    ),
    re_path(rf"^flags/{KEY}/rollouts/?$", RolloutCollectionView.as_view(), name="flag-rollouts"),
    re_path(rf"^flags/{KEY}/rollouts/{PLAN}/?$", RolloutDetailView.as_view(), name="flag-rollout"),
    re_path(
        rf"^flags/{KEY}/rollouts/{PLAN}/(?P<action>pause|resume|abort)/?$",
        RolloutActionView.as_view(),
        name="flag-rollout-action",
    ),
    re_path(r"^automation/?$", AutomationView.as_view(), name="automation"),
    re_path(r"^segments/?$", SegmentCollectionView.as_view(), name="segments"),
    re_path(rf"^segments/{KEY}/?$", SegmentDetailView.as_view(), name="segment-detail"),
    re_path(r"^evaluate/preview/?$", EvaluatePreviewView.as_view(), name="evaluate-preview"),
    re_path(r"^snapshot/?$", SnapshotView.as_view(), name="snapshot"),
    re_path(r"^snapshot/keys/?$", SnapshotKeysView.as_view(), name="snapshot-keys"),
    re_path(r"^audit/?$", AuditListView.as_view(), name="audit"),
    re_path(r"^usage/?$", UsageReportView.as_view(), name="usage"),
    re_path(r"^exposures/?$", ExposureReportView.as_view(), name="exposures"),
    re_path(r"^events/?$", EventsView.as_view(), name="events"),
    re_path(r"^webhooks/?$", WebhookCollectionView.as_view(), name="webhooks"),
    re_path(rf"^webhooks/{WEBHOOK}/?$", WebhookDetailView.as_view(), name="webhook-detail"),
    re_path(
        rf"^webhooks/{WEBHOOK}/rotate-secret/?$", WebhookRotateSecretView.as_view(), name="webhook-rotate"
    ),
    re_path(
        rf"^webhooks/{WEBHOOK}/deliveries/?$", WebhookDeliveriesView.as_view(), name="webhook-deliveries"
    ),
    re_path(
        rf"^webhooks/{WEBHOOK}/deliveries/(?P<delivery_id>[0-9]{{1,18}})/redeliver/?$",
        WebhookRedeliverView.as_view(),
        name="webhook-redeliver",
    ),
    re_path(r"^.*$", api_not_found),
]

# OpenFeature Remote Evaluation Protocol (api.md, OFREP): the same tokens and tenants as /v1.
ofrep_v1 = [
    re_path(r"^evaluate/flags/?$", OfrepFlagsView.as_view(), name="ofrep-flags"),
    re_path(r"^evaluate/flags/(?P<key>[^/]+)/?$", OfrepFlagView.as_view(), name="ofrep-flag"),
    re_path(r"^.*$", api_not_found),
]

urlpatterns = [
    # The hot routes first: every route before them costs each evaluation a regex match.
    re_path(r"^v1/evaluate/?$", evaluate_view, name="evaluate"),
    re_path(r"^v1/evaluate/bulk/?$", evaluate_bulk_view, name="evaluate-bulk"),
    path("v1/", include(v1)),
    re_path(r"^v1$", api_not_found),
    path("ofrep/v1/", include(ofrep_v1)),
    path("", ops_views.home, name="home"),
    path("healthz", ops_views.healthz, name="healthz"),
    path("readyz", ops_views.readyz, name="readyz"),
    path("", include("django_prometheus.urls")),
    path("openapi.json", SpectacularJSONAPIView.as_view(), name="openapi"),
    path("docs", SpectacularSwaggerView.as_view(url_name="openapi"), name="docs"),
    path("redoc", SpectacularRedocView.as_view(url_name="openapi"), name="redoc"),
    # The flag admin's preview panel is evaluation's (evaluation reads flags; flags does not import it),
    # mounted at the flag admin's paths, before the admin's own `<object_id>/` catch-all.
    path(
        "admin/flags/flag/preview/",
        admin.site.admin_view(flag_preview_new_view),
        name="admin_flag_preview_new",
    ),
    path(
        "admin/flags/flag/<path:object_id>/preview/",
        admin.site.admin_view(flag_preview_view),
        name="admin_flag_preview",
    ),
    path("admin/flags/playground/", admin.site.admin_view(playground_view), name="admin_playground"),
    path("admin/", admin.site.urls),
]
