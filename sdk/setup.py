"""Build the engine's hot-path modules with mypyc, and fall back to plain Python when that fails.

The compiled engine answers the same as the pure one (the same test suite runs against both: ``make
test-sdk-alone`` installs this package compiled, the main test run imports the source) and is about
twice as fast (``benchmarks/RESULTS.md``). Everything else in ``pyproject.toml``.

``FLAGSVC_SDK_COMPILE=0`` builds plain Python; so does an editable install (``pip install -e``),
where a compiled module would shadow the source being edited. A build that cannot compile (no C
compiler, an unsupported Python) warns and installs plain Python instead of failing.
"""

from __future__ import annotations

import os
import sys
from typing import Any

from setuptools import setup
from setuptools.command.build_ext import build_ext

HOT_PATH = [
    "flagsvc_sdk/engine/evaluation.py",
    "flagsvc_sdk/engine/results.py",
    "flagsvc_sdk/engine/compiled.py",
    "flagsvc_sdk/engine/bucketing.py",
    "flagsvc_sdk/engine/values.py",
    "flagsvc_sdk/engine/conditions.py",
    "flagsvc_sdk/engine/operators.py",
    "flagsvc_sdk/engine/regex.py",
    "flagsvc_sdk/local.py",
]


class OptionalBuildExt(build_ext):
    """Compile if possible; a failed compile leaves the pure-Python modules in place."""

    def run(self) -> None:
        try:
            super().run()
        except Exception as error:  # any compiler failure means "ship pure Python"
            _warn(f"could not compile the engine ({error}); installing pure Python")

    def build_extension(self, ext: Any) -> None:
        try:
            super().build_extension(ext)
        except Exception as error:
            _warn(f"could not compile {ext.name} ({error}); installing pure Python")


def _warn(message: str) -> None:
    print(f"flagsvc-sdk: {message}", file=sys.stderr)


def _wants_compiled() -> bool:
    if os.environ.get("FLAGSVC_SDK_COMPILE", "1").strip() == "0":
        return False
    return not any(arg in ("editable_wheel", "develop") for arg in sys.argv)


def _ext_modules() -> list[Any]:
    if not _wants_compiled():
        return []
    try:
        from mypyc.build import mypycify
    except ImportError:
        _warn("mypyc is not available; installing pure Python")
        return []
    try:
        return list(mypycify(HOT_PATH, opt_level="3", group_name="flagsvc_sdk_engine"))
    except (Exception, SystemExit) as error:  # mypyc exits on a type error
        _warn(f"mypyc could not translate the engine ({error}); installing pure Python")
        return []


setup(ext_modules=_ext_modules(), cmdclass={"build_ext": OptionalBuildExt})
