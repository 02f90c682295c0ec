"""Fail loudly unless ``flagsvc_sdk`` imports as the mypyc-compiled build from the given directory.

Run by ``make compiled-sdk`` with that directory first on ``PYTHONPATH``: a build that fell back to
plain Python (no C compiler, mypyc refused the engine) must not let the server's tests pass on an
engine production never runs. ``python scripts/require_compiled_engine.py .sdk-compiled``
"""

from __future__ import annotations

import sys
from pathlib import Path


def main(directory: str) -> int:
    import flagsvc_sdk.engine as engine

    where = Path(engine.__file__).resolve()
    if not where.is_relative_to(Path(directory).resolve()):
        print(f"flagsvc_sdk was imported from {where}, not from the build in {directory}", file=sys.stderr)
        return 1
    if not engine.COMPILED:
        print(f"the SDK in {directory} is plain Python: mypyc did not compile the engine", file=sys.stderr)
        return 1
    print(f"compiled engine in {directory}")
    return 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1]))
