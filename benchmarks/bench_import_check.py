"""The ruleset check of an import (`flags.integrity.broken_flags` on every flag written at once, what
`manage.py import_flags` runs in its plan and again under the lock), before and after it validated
each flag against its neighbourhood in the prerequisite graph instead of every other live flag.

    .venv/bin/python benchmarks/bench_import_check.py [--sizes 1000,2000,10000] [--old-up-to 10000]

The flags are `_workloads.mixed_flags` (eight shapes, prerequisites pointing backwards, 20 segments).
"Before" is the same function with each flag handed every other live flag (the code as it was), run
in the same process, so the ratio is measured on the same load. CPU seconds (`time.process_time`),
median of `--rounds` runs; the before side runs once at sizes over 2,000 (minutes each).
"""

from __future__ import annotations

import argparse
import os
import sys
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
sys.path[:0] = [str(BENCH_DIR.parent), str(BENCH_DIR)]
os.environ.setdefault("DJANGO_SETTINGS_MODULE", "flagsvc.settings")
os.environ.setdefault("DEBUG", "1")

import django  # noqa: E402

django.setup()

from _common import CLOCK, command_line, load_average, median, table  # noqa: E402
from _workloads import mixed_flags, mixed_segments  # noqa: E402
from flagsvc_sdk.engine import validate_flag  # noqa: E402

from flags import integrity  # noqa: E402


class EveryOtherFlag(integrity._Neighbourhoods):
    """The check as it was: each flag validated against every other live flag."""

    def of(self, key: str, doc: Any) -> dict[str, Any]:
        return {other: node for other, node in self.live.items() if other != key}


def check_seconds(flags: dict[str, dict[str, Any]], segment_keys: list[str], *, before: bool) -> float:
    original = integrity._Neighbourhoods
    if before:
        integrity._Neighbourhoods = EveryOtherFlag  # type: ignore[misc]
    try:
        started = CLOCK()
        broken = integrity.broken_flags(
            flags=flags, segment_keys=segment_keys, flags_written=set(flags), segments_written=()
        )
        elapsed = CLOCK() - started
    finally:
        integrity._Neighbourhoods = original  # type: ignore[misc]
    assert broken == [], broken
    return elapsed


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--sizes", default="1000,2000,10000")
    parser.add_argument("--old-up-to", type=int, default=10_000, help="largest size the before side runs at")
    parser.add_argument("--rounds", type=int, default=3)
    args = parser.parse_args()
    print(f"command: {command_line()}\nload average before: {load_average()}")
    segments = mixed_segments()
    segment_keys = [segment["key"] for segment in segments]
    rows = []
    for size in [int(value) for value in args.sizes.split(",")]:
        documents = mixed_flags(size, segment_keys)
        flags = {doc["key"]: validate_flag(doc, segment_keys=segment_keys) for doc in documents}
        after = median(check_seconds(flags, segment_keys, before=False) for _ in range(args.rounds))
        before = None
        if size <= args.old_up_to:
            runs = args.rounds if size <= 2000 else 1
            before = median(check_seconds(flags, segment_keys, before=True) for _ in range(runs))
        rows.append(
            [
                f"{size:,}",
                "-" if before is None else f"{before:.2f}",
                f"{after:.3f}",
                "-" if before is None else f"{before / after:.0f}x",
            ]
        )
        print(table(["flags written", "before, CPU s", "after, CPU s", "ratio"], rows[-1:]), flush=True)
    print(table(["flags written", "before, CPU s", "after, CPU s", "ratio"], rows))
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
