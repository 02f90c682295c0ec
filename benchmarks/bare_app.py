"""The HTTP benchmark's baseline: a bare Django view returning a constant JSON body.

Its own minimal settings (no middleware, no apps, no database), served by the same
``gunicorn -c gunicorn.conf.py`` with the same workers and threads as the real server::

    gunicorn -c gunicorn.conf.py --pythonpath benchmarks bare_app:application

Whatever the real ``POST /v1/evaluate`` costs beyond this is the price of our stack: DRF, auth,
tenancy, metrics, logging and the engine.
"""

from __future__ import annotations

from django.conf import settings

if not settings.configured:
    settings.configure(
        DEBUG=False,
        SECRET_KEY="benchmark-only-bare-app",
        ALLOWED_HOSTS=["127.0.0.1", "localhost"],
        ROOT_URLCONF=__name__,
        MIDDLEWARE=[],
        INSTALLED_APPS=[],
        DATABASES={},
        USE_TZ=True,
        # gunicorn.conf.py's post_worker_init reads this; there is no rules cache to warm here.
        RULESET_WARM_ON_START=False,
        # gunicorn.conf.py's worker (flagsvc.http_worker) reads these two: the service's defaults.
        API_MAX_BODY_BYTES=1024 * 1024,
        REQUEST_READ_TIMEOUT_SECONDS=10.0,
    )

from django.core.wsgi import get_wsgi_application
from django.http import HttpRequest, JsonResponse
from django.urls import path

ANSWER = {
    "flag_key": "simple",
    "variant": "on",
    "value": True,
    "reason": "PERCENTAGE_ROLLOUT",
    "rule_id": None,
    "details": {"bucket": 0.4217, "flag_version": 1},
}
"""The same shape and size as a real evaluation answer."""


def constant(request: HttpRequest) -> JsonResponse:
    return JsonResponse(ANSWER)


urlpatterns = [
    path("v1/evaluate", constant),
    path("readyz", constant),
    path("healthz", constant),
]

application = get_wsgi_application()
