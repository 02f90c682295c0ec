"""What the SDK's usage counting costs ``bool_value`` (issue 15, item 1): two builds of the compiled
SDK, the one before counting (``--baseline``, e.g. main's ``sdk/`` built with ``pip install --target``)
and this one (``--candidate``, ``make compiled-sdk``: ``.sdk-compiled``).

1. **Ratio against the floor**, measured in the same process as the floor (``bench_sdk.py``'s per-call
   part, ``--no-latency``), one process per build, alternating A B A B ... ``--runs`` times so that the
   shared machine's load falls on both alike. Reported: the median ``bool_value`` / floor ratio of each
   build and their quotient.
2. **Instructions per call** (``valgrind --tool=callgrind``, load-independent): the instructions of a
   process making ``--calls`` ``bool_value`` calls minus one making none, divided by ``--calls``.

    .venv/bin/python benchmarks/bench_sdk_counting.py --baseline /tmp/base-sdk --candidate .sdk-compiled

Results: ``benchmarks/RESULTS.md`` ("SDK usage counting").
"""

from __future__ import annotations

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[1]

CALLS_SCRIPT = """
import sys
from flagsvc_sdk import FlagClient
from flagsvc_sdk.engine import COMPILED, compile_ruleset
sys.path.insert(0, {bench!r})
from bench_sdk import SIMPLE, make_users
assert COMPILED
ruleset = compile_ruleset(tenant="acme", version="1", flags=[SIMPLE], segments=[])
client = FlagClient("http://127.0.0.1:9", "bench", "bench", "acme", start=False)
client._local.ruleset = ruleset
users = make_users(1000)
bool_value = client.bool_value
for user in users:  # warm
    bool_value("new-checkout", user, False)
for i in range({calls}):
    bool_value("new-checkout", users[i % 1000], False)
"""


def ratio_run(build: str, args: argparse.Namespace) -> dict[str, float]:
    out = Path(tempfile.mkstemp(suffix=".json")[1])
    env = {**os.environ, "PYTHONPATH": build, "BENCH_SDK_REEXEC": "1"}
    subprocess.run(
        [
            sys.executable,
            str(REPO / "benchmarks" / "bench_sdk.py"),
            "--no-latency",
            "--users",
            str(args.users),
            "--rounds",
            str(args.rounds),
            "--json",
            str(out),
        ],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
    )
    results = json.loads(out.read_text())["calls"]["results"]
    out.unlink()
    return {name: value["ratio"] for name, value in results.items()}


def instructions(build: str, calls: int) -> int:
    directory = Path(tempfile.mkdtemp(prefix="callgrind-"))
    script = directory / "calls.py"
    script.write_text(CALLS_SCRIPT.format(bench=str(REPO / "benchmarks"), calls=calls))
    out = directory / "callgrind.out"
    env = {**os.environ, "PYTHONPATH": build}
    subprocess.run(
        ["valgrind", "--tool=callgrind", f"--callgrind-out-file={out}", sys.executable, str(script)],
        env=env,
        check=True,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    total = 0
    for line in out.read_text().splitlines():
        if line.startswith("summary:") or line.startswith("totals:"):
            total = int(line.split()[1])
    shutil.rmtree(directory)
    return total


def main() -> None:
    parser = argparse.ArgumentParser(
        description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter
    )
    parser.add_argument("--baseline", required=True)
    parser.add_argument("--candidate", default=str(REPO / ".sdk-compiled"))
    parser.add_argument("--runs", type=int, default=3)
    parser.add_argument("--users", type=int, default=100_000)
    parser.add_argument("--rounds", type=int, default=7)
    parser.add_argument("--calls", type=int, default=200_000)
    parser.add_argument("--no-callgrind", action="store_true")
    args = parser.parse_args()
    builds = {"baseline": args.baseline, "candidate": args.candidate}
    print(f"load: {os.getloadavg()}")
    ratios: dict[str, list[float]] = {"baseline": [], "candidate": []}
    for run in range(args.runs):
        for name, build in builds.items():
            ratio = ratio_run(build, args)["sdk bool_value simple"]
            ratios[name].append(ratio)
            print(f"run {run + 1} {name}: bool_value {ratio:.3f}x the floor", flush=True)
    base, cand = statistics.median(ratios["baseline"]), statistics.median(ratios["candidate"])
    print(
        f"median bool_value/floor: baseline {base:.3f}x, candidate {cand:.3f}x, candidate/baseline {cand / base:.3f}"
    )
    if not args.no_callgrind and shutil.which("valgrind"):
        for name, build in builds.items():
            none, many = instructions(build, 0), instructions(build, args.calls)
            print(
                f"callgrind {name}: {(many - none) / args.calls:.1f} instructions per bool_value call",
                flush=True,
            )
    print(f"load: {os.getloadavg()}")


if __name__ == "__main__":
    main()
