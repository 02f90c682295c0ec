"""A build of the SDK that cannot compile still installs the engine, as plain Python (ADR 0006).

Builds a wheel from a copy of ``sdk/`` (without a stale ``build/``) with ``CC=false``, so every
compile fails, and checks the wheel holds the engine's sources and no compiled module.
Run by ``make test-sdk-alone``: ``python scripts/check_sdk_fallback.py``.
"""

from __future__ import annotations

import os
import shutil
import subprocess
import sys
import tempfile
import zipfile
from pathlib import Path

SDK = Path(__file__).resolve().parent.parent / "sdk"


def main() -> None:
    with tempfile.TemporaryDirectory(prefix="sdk-fallback-") as tmp:
        source = Path(tmp) / "sdk"
        shutil.copytree(SDK, source, ignore=shutil.ignore_patterns("build", "*.egg-info", "__pycache__"))
        subprocess.run(  # noqa: S603 - our own interpreter and a path we just made
            [sys.executable, "-m", "pip", "wheel", "--quiet", "--no-deps", "-w", tmp, str(source)],
            env={**os.environ, "CC": "false"},
            check=True,
        )
        (wheel,) = Path(tmp).glob("*.whl")
        names = zipfile.ZipFile(wheel).namelist()
    compiled = [name for name in names if name.endswith((".so", ".pyd"))]
    if compiled or "flagsvc_sdk/engine/evaluation.py" not in names:
        sys.exit(f"a build without a compiler should ship plain Python; it shipped {compiled or names}")
    print(f"without a compiler the SDK builds as plain Python ({wheel.name})")


if __name__ == "__main__":
    main()
