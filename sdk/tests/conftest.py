"""Property tests judge answers, never speed: no per-example deadline (a loaded machine made
Hypothesis report a 0.4 ms example as flaky after one 291 ms run)."""

from hypothesis import settings

settings.register_profile("flagsvc", deadline=None)
settings.load_profile("flagsvc")
