"""Django set up in-process for a benchmark: the project and this folder on the path, benchmark-only
secrets and settings unless the environment gives its own (never for a real deployment), then
`django.setup()`. Import it before anything that imports models.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import django

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]

DEFAULTS = {
    "DJANGO_SETTINGS_MODULE": "flagsvc.settings",
    "DEBUG": "0",
    "JWT_SECRET": "benchmark-only-jwt-secret-of-at-least-32-bytes",
    "SECRET_KEY": "benchmark-only-django-secret-key",
    "SNAPSHOT_SIGNING_KEY": "YmVuY2htYXJrLW9ubHktc25hcHNob3Qtc2lnbmluZyE",
    "RULESET_WARM_ON_START": "0",
}
for name, value in DEFAULTS.items():
    os.environ.setdefault(name, value)

django.setup()
