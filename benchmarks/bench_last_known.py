"""The last known record after one write to a 10,000-flag tenant (ADR 0007; issue 16, items 5-6):
what the process that caught up first spends serialising it, before and after `evaluation.cache.kept_body`
reused the texts of the definitions the write did not change.

    .venv/bin/python benchmarks/bench_last_known.py [--flags 10000] [--rounds 7]

Before: the record serialised whole from the compiled ruleset (`{**flag.doc, "version"}` of every
flag, then `json.dumps`), as `keep_last_known_compiled` did. After: `kept_body` with the texts its
entry kept from the previous version. Both in the same process, on the same ruleset, alternating;
CPU seconds (`time.process_time`), median of `--rounds`. Writing the record to Redis or the file
costs the same in both (its size is printed).
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
from _workloads import TENANT, mixed_flags, mixed_segments  # noqa: E402
from flagsvc_sdk.engine import compile_ruleset, recompile  # noqa: E402

from evaluation.cache import kept_body  # noqa: E402
from evaluation.texts import NO_RULESET_TEXTS  # noqa: E402
from tenancy import last_known  # noqa: E402


def whole(ruleset: Any) -> str:
    return last_known.dumps(
        {
            "tenant_id": 1,
            "flags": [{**flag.doc, "version": flag.version} for flag in ruleset.flags.values()],
            "segments": [
                {**segment.doc, "version": segment.version} for segment in ruleset.segments.values()
            ],
        }
    )


def main() -> None:
    parser = argparse.ArgumentParser()
    parser.add_argument("--flags", type=int, default=10_000)
    parser.add_argument("--rounds", type=int, default=7)
    args = parser.parse_args()
    print(f"command: {command_line()}\nload average before: {load_average()}")
    segments = mixed_segments()
    documents = [{**doc, "version": 1} for doc in mixed_flags(args.flags, [s["key"] for s in segments])]
    ruleset = compile_ruleset(
        tenant=TENANT, version="1", flags=documents, segments=[{**s, "version": 1} for s in segments]
    )
    _, texts = kept_body(1, ruleset, NO_RULESET_TEXTS)  # the texts an entry holds after its first record
    before: list[float] = []
    after: list[float] = []
    for round_ in range(args.rounds):
        changed_doc = {**documents[round_], "state": "off", "version": 2 + round_}
        ruleset = recompile(ruleset, version=str(2 + round_), flags=[changed_doc])
        started = CLOCK()
        old = whole(ruleset)
        before.append(CLOCK() - started)
        started = CLOCK()
        new, texts = kept_body(1, ruleset, texts)
        after.append(CLOCK() - started)
        assert new == old
    rows = [
        [
            f"{args.flags:,}",
            f"{len(old) / 1e6:.1f} MB",
            f"{median(before) * 1000:.1f}",
            f"{median(after) * 1000:.1f}",
            f"{median(before) / median(after):.0f}x",
        ]
    ]
    print(table(["flags", "record", "before, CPU ms", "after, CPU ms", "ratio"], rows))
    print(f"load average after: {load_average()}")


if __name__ == "__main__":
    main()
