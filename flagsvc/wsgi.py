import os

import django
from django.core.handlers.wsgi import WSGIHandler

os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
# django.core.wsgi.get_wsgi_application, with tracing set up (when configured) before the handler
# loads the middleware: the Django instrumentation adds its own (flagsvc/tracing.py).
django.setup(set_prefix=False)

from flagsvc.tracing import configure  # noqa: E402  (needs the settings)

configure()
application = WSGIHandler()
