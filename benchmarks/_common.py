"""What every benchmark script shares: machine facts, interleaved timing, medians, tables, output.

Timing follows ``timeit``: a contender is a function that does ``loops`` iterations of the work and
the garbage collector is off while it runs. The contenders of one script are measured round-robin
(A, B, C, A, B, C, ...) so that a ratio compares numbers taken seconds apart in the same process,
and every reported figure is the median of the rounds.
"""

from __future__ import annotations

import datetime as dt
import gc
import json
import os
import platform
import statistics
import subprocess
import sys
import time
from collections.abc import Callable, Iterable, Sequence
from pathlib import Path
from typing import Any

BENCH_DIR = Path(__file__).resolve().parent
REPO = BENCH_DIR.parent
MAIN_PYTHON = REPO / ".venv" / "bin" / "python"

CLOCK = time.process_time
"""CPU time of this process, not wall time: the machine is shared (other engineers run test suites
on its two cores), and time spent descheduled is not time our code took. The work measured here is
CPU-bound, so on a quiet machine both clocks agree; on a busy one, CPU time stays close to the truth
while wall time does not. ``BENCH_CLOCK=wall`` switches every script to ``time.perf_counter``.
"""
if os.environ.get("BENCH_CLOCK") == "wall":
    CLOCK = time.perf_counter
CLOCK_NAME = "wall time (perf_counter)" if CLOCK is time.perf_counter else "CPU time (process_time)"

Timed = Callable[[int], float]
"""Runs ``loops`` iterations of some work and returns the seconds they took."""


def cpu_model() -> str:
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                return line.split(":", 1)[1].strip()
    except OSError:
        pass
    return platform.processor() or "unknown"


def machine() -> dict[str, Any]:
    return {
        "date": dt.datetime.now(dt.UTC).strftime("%Y-%m-%d %H:%M UTC"),
        "nproc": len(os.sched_getaffinity(0)),
        "cpu": cpu_model(),
        "python": f"{platform.python_implementation()} {platform.python_version()}",
        "executable": sys.executable,
        "platform": platform.platform(),
        "loadavg": load_average(),
        "code": code_version(),
        "clock": CLOCK_NAME,
    }


def code_version() -> str:
    """The commit measured, and whether the tree had changes outside benchmarks/ (others' work)."""
    try:
        head = subprocess.run(
            ["git", "rev-parse", "--short", "HEAD"], cwd=REPO, capture_output=True, text=True, check=True
        ).stdout.strip()
        status = subprocess.run(
            ["git", "status", "--porcelain", "--", ".", ":!benchmarks"],
            cwd=REPO,
            capture_output=True,
            text=True,
            check=True,
        ).stdout
    except (OSError, subprocess.CalledProcessError):
        return "unknown"
    changed = len(status.splitlines())
    return head + (f" + {changed} uncommitted file(s)" if changed else "")


def load_average() -> str:
    """The 1/5/15-minute load averages: other work on the machine skews every number here."""
    try:
        return " ".join(Path("/proc/loadavg").read_text().split()[:3])
    except OSError:
        return "unknown"


def command_line() -> str:
    return " ".join([sys.executable if sys.argv[0].endswith(".py") else "", *sys.argv]).strip()


def timed(fn: Callable[[int], None]) -> Timed:
    """Wrap ``fn(loops)`` as a ``Timed`` with the garbage collector off, as ``timeit`` does."""

    def run(loops: int) -> float:
        enabled = gc.isenabled()
        gc.disable()
        try:
            started = CLOCK()
            fn(loops)
            return CLOCK() - started
        finally:
            if enabled:
                gc.enable()

    return run


def autorange(run: Timed, target_seconds: float) -> int:
    """The smallest loop count (1, 2, 5, 10, 20, ...) whose run takes at least ``target_seconds``."""
    loops = 1
    while True:
        for multiple in (1, 2, 5):
            count = loops * multiple
            if run(count) >= target_seconds:
                return count
        loops *= 10


def interleaved(
    contenders: dict[str, tuple[Timed, int]], rounds: int, ops_per_loop: dict[str, int]
) -> dict[str, list[float]]:
    """Seconds per operation of each contender, one sample per round, measured round-robin."""
    samples: dict[str, list[float]] = {name: [] for name in contenders}
    for _ in range(rounds):
        for name, (run, loops) in contenders.items():
            samples[name].append(run(loops) / (loops * ops_per_loop[name]))
    return samples


def median(values: Iterable[float]) -> float:
    return statistics.median(list(values))


def spread(values: Sequence[float]) -> str:
    """min-max around the median, as a percentage of it: how noisy the rounds were."""
    mid = median(values)
    if mid == 0:
        return "n/a"
    return f"±{max(abs(max(values) - mid), abs(mid - min(values))) / mid * 100:.0f}%"


def table(headers: Sequence[str], rows: Sequence[Sequence[Any]]) -> str:
    """A Markdown table (also readable as plain text)."""
    cells = [[str(c) for c in headers], *[[str(c) for c in row] for row in rows]]
    widths = [max(len(row[i]) for row in cells) for i in range(len(headers))]

    def line(row: Sequence[str]) -> str:
        return "| " + " | ".join(cell.ljust(widths[i]) for i, cell in enumerate(row)) + " |"

    return "\n".join(
        [line(cells[0]), "|" + "|".join("-" * (w + 2) for w in widths) + "|"]
        + [line(row) for row in cells[1:]]
    )


def verdict(ok: bool) -> str:
    return "met" if ok else "NOT met"


def write_json(path: str | None, payload: dict[str, Any]) -> None:
    if path:
        Path(path).write_text(json.dumps(payload, indent=2, default=str))


def header(title: str) -> str:
    info = machine()
    return (
        f"## {title}\n\n"
        f"{info['date']} — {info['nproc']} CPU(s), {info['cpu']}, {info['python']}, "
        f"load average {info['loadavg']}; clock: {info['clock']}; code {info['code']}\n"
        f"command: `{command_line()}`\n"
    )
