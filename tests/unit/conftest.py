"""Fixtures the unit tests share (a module's own fixture of the same name wins)."""

from tests.webhook_worker_support import loopback_allowed  # noqa: F401  (a fixture for the webhook tests)
