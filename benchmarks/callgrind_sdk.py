"""Instructions per SDK call, counted by valgrind (``--tool=callgrind``): where a call's cost goes,
independent of the load on the machine.

Each contender runs under callgrind with the same setup (``--calls`` distinct users made) and then
``--calls`` calls; one more run makes no calls. The difference, divided by the calls, is what one
call costs (interpreter start, imports and setup cancel out). Contenders are ``bench_sdk.py``'s: ``floor`` (one ``mmh3.hash`` and a dict lookup),
``bool_value`` on the simple flag, ``string_value`` on the complex flag (the real email pattern),
``validate_user``. ``--peers DIR --peer-python PY`` adds the fastest peer, GrowthBook, counted the
same way through the peers harness's own adapter (``DIR/sdk_eval_bench.py``, ``setup_growthbook``:
``set_attributes`` then ``is_on`` / ``get_feature_value``) and its floor, in the scratch environment
PY where it is installed (never in the project's). ``--annotate`` keeps the callgrind files of the N-call run and prints the
inclusive cost of the top functions (``callgrind_annotate``).

Needs the compiled SDK: ``make compiled-sdk``, then
``PYTHONPATH=.sdk-compiled .venv/bin/python benchmarks/callgrind_sdk.py``.
Results: ``benchmarks/RESULTS.md`` ("SDK: instructions per call").
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
import tempfile
from pathlib import Path
from typing import Any

CONTENDERS = ("floor", "bool_value", "string_value", "validate_user")
PEER_CONTENDERS = ("peer_floor", "growthbook_simple", "growthbook_complex")


def run_peer(contender: str, made_users: int, calls: int) -> None:
    """``run_one`` for the peers: the harness's adapter and users (``PEERS_DIR`` on the path)."""
    sys.path.insert(0, os.environ["PEERS_DIR"])
    import sdk_eval_bench as harness

    made = harness.make_users(made_users, "cg", 7)
    if contender == "peer_floor":
        prep, ev, _ = harness.setup_floor("simple")
    else:
        prep, ev, _ = harness.setup_growthbook(contender.removeprefix("growthbook_"))
    contexts = [prep(user) for user in made]
    for context in contexts[: min(50, len(contexts))]:  # warm: the timed harness warms up too
        ev(context)
    for context in contexts[:calls]:
        ev(context)


def run_one(contender: str, made_users: int, calls: int) -> None:
    """The body run under valgrind: set up, then ``calls`` calls of ``contender``."""
    sys.path.insert(0, str(Path(__file__).resolve().parent))
    import mmh3
    from bench_sdk import COMPLEX, SIMPLE, make_users
    from flagsvc_sdk import FlagClient
    from flagsvc_sdk.engine import COMPILED, compile_ruleset, validate_user

    assert COMPILED, "run with the compiled SDK on PYTHONPATH (make compiled-sdk)"
    ruleset = compile_ruleset(tenant="acme", version="1", flags=[SIMPLE, COMPLEX], segments=[])
    client = FlagClient("http://127.0.0.1:9", "bench", "bench", "acme", start=False)
    client._local.ruleset = ruleset
    made = make_users(made_users)
    ids = [user["id"] for user in made][:calls]
    users = made[:calls]
    table = {"new-checkout": 0.5}

    def floor_eval(uid: str, _h: Any = mmh3.hash, _t: dict[str, float] = table) -> bool:
        return bool(_h(f"acme:new-checkout:{uid}", 0, False) / 4294967296.0 < _t["new-checkout"])

    bool_value, string_value = client.bool_value, client.string_value
    if contender == "floor":
        for uid in ids:
            floor_eval(uid)
    elif contender == "bool_value":
        for user in users:
            bool_value("new-checkout", user, False)
    elif contender == "string_value":
        for user in users:
            string_value("pricing-experiment", user, "a")
    else:
        for user in users:
            validate_user(user)


def count(contender: str, made_users: int, calls: int, out: Path, python: str) -> int:
    """Total instructions of one run of ``run_one`` under callgrind."""
    subprocess.run(
        [
            "valgrind",
            "--tool=callgrind",
            f"--callgrind-out-file={out}",
            python,
            __file__,
            "--inner",
            contender,
            str(made_users),
            str(calls),
        ],
        check=True,
        capture_output=True,
        # A fixed hash seed: string hashes (and so dict probing) are then the same in every run,
        # which makes the counts repeatable to the instruction rather than to ~100 a call.
        env={**os.environ, "PYTHONHASHSEED": "0"},
    )
    for line in out.read_text().splitlines():
        if line.startswith("totals:") or line.startswith("summary:"):
            return int(line.split()[1])
    raise RuntimeError(f"no totals in {out}")


def main() -> None:
    if len(sys.argv) == 5 and sys.argv[1] == "--inner":
        inner = run_peer if sys.argv[2] in PEER_CONTENDERS else run_one
        inner(sys.argv[2], int(sys.argv[3]), int(sys.argv[4]))
        return
    parser = argparse.ArgumentParser(description=__doc__)
    parser.add_argument("--calls", type=int, default=20_000)
    parser.add_argument("--only", nargs="*", default=list(CONTENDERS))
    parser.add_argument("--annotate", metavar="DIR", help="keep the callgrind files here")
    parser.add_argument("--peers", metavar="DIR", help="/work/shared/bench/peers: add GrowthBook")
    parser.add_argument("--peer-python", default=sys.executable, help="the peers' scratch venv")
    parser.add_argument("--peer-calls", type=int, default=2_000)
    args = parser.parse_args()
    if args.peers:
        os.environ["PEERS_DIR"] = str(Path(args.peers).resolve())
        args.only = [*args.only, *PEER_CONTENDERS]
    keep = Path(args.annotate) if args.annotate else Path(tempfile.mkdtemp(prefix="callgrind-sdk-"))
    keep.mkdir(parents=True, exist_ok=True)
    per_call: dict[str, float] = {}
    # Our contenders share one setup (``run_one`` builds all of it whatever the contender), so one
    # run without calls serves them all. Each peer contender sets up (and imports) its own system,
    # so each gets its own run without calls: subtracting the floor's would count GrowthBook's
    # imports as calls.
    empty: dict[str, int] = {}
    for contender in args.only:
        peer = contender in PEER_CONTENDERS
        calls = args.peer_calls if peer else args.calls
        python = args.peer_python if peer else sys.executable
        setup = contender if peer else "ours"
        if setup not in empty:
            empty[setup] = count(contender, calls, 0, keep / f"{contender}.empty.out", python)
        full = count(contender, calls, calls, keep / f"{contender}.full.out", python)
        per_call[contender] = (full - empty[setup]) / calls
    floor = per_call.get("floor")
    print(f"instructions per call ({args.calls:,} distinct users; callgrind, N calls minus 0 calls)")
    for contender, instructions in per_call.items():
        ratio = f"  {instructions / floor:.2f}x floor" if floor else ""
        print(f"  {contender:<14} {instructions:8.0f}{ratio}")
    for ours, peer in (("bool_value", "growthbook_simple"), ("string_value", "growthbook_complex")):
        if ours in per_call and peer in per_call:
            print(f"  {peer} / {ours}: {per_call[peer] / per_call[ours]:.1f}x")
    print(f"callgrind files: {keep}")


if __name__ == "__main__":
    main()
