"""Engine: nanoseconds per ``evaluate()`` of the two reference flags, against a floor and GrowthBook.

Contenders, all in one process and measured round-robin (``_common.interleaved``):

- ``floor``: one ``mmh3.hash(f"acme:flag:{uid}", 0, False)`` plus one dict lookup per user; no
  engine can bucket a user for less in Python.
- ``engine simple`` / ``engine complex``: ``flagsvc_sdk.engine.evaluate(ruleset, key, user)``.
- ``growthbook simple`` / ``growthbook complex``: the same two flags as GrowthBook features, one
  long-lived ``GrowthBook`` instance, ``set_attributes(user)`` + ``eval_feature(key)`` per user (the
  cheapest way its synchronous SDK evaluates for many users).

Every contender walks the same pre-generated users (distinct ids, mixed attributes). GrowthBook is
installed only in ``benchmarks/.venv-growthbook``: run from there, or let this script create it
(``python3 -m venv`` + ``pip install growthbook mmh3 google-re2 ./sdk``) and re-run itself in it.
The SDK is (re)installed there on every such run, as a user gets it: compiled by mypyc
(``sdk/setup.py``). ``--pure`` measures the plain-Python engine from the source tree instead.
"""

from __future__ import annotations

import argparse
import os
import subprocess
import sys
from pathlib import Path
from typing import Any

sys.path.insert(0, str(Path(__file__).resolve().parent))

from _common import (
    BENCH_DIR,
    REPO,
    autorange,
    header,
    interleaved,
    machine,
    median,
    spread,
    table,
    timed,
    verdict,
    write_json,
)
from _workloads import COMPLEX_FLAG, SIMPLE_FLAG, TENANT, make_users

GROWTHBOOK_VENV = BENCH_DIR / ".venv-growthbook"
GROWTHBOOK_PYTHON = GROWTHBOOK_VENV / "bin" / "python"

TARGET_SIMPLE = 1.5  # x floor
TARGET_COMPLEX = 3.0  # x floor
TARGET_VS_GROWTHBOOK = 20.0  # x faster

GROWTHBOOK_FEATURES: dict[str, Any] = {
    # The simple flag: a force rule for NL, then a 50/50 experiment bucketed by id.
    "simple": {
        "defaultValue": False,
        "rules": [
            {"id": "nl", "condition": {"country": "NL"}, "force": True},
            {
                "id": "split",
                "key": "simple",
                "hashAttribute": "id",
                "variations": [True, False],
                "weights": [0.5, 0.5],
            },
        ],
    },
    # The complex flag: three force rules ($regex, $gte/$lt, $in), then a 50/30/20 experiment.
    "complex": {
        "defaultValue": "control",
        "rules": [
            {"id": "staff", "condition": {"email": {"$regex": r"@example\.com$"}}, "force": "blue"},
            {"id": "thirties", "condition": {"age": {"$gte": 30, "$lt": 40}}, "force": "green"},
            {"id": "paid", "condition": {"plan": {"$in": ["pro", "enterprise"]}}, "force": "blue"},
            {
                "id": "split",
                "key": "complex",
                "hashAttribute": "id",
                "variations": ["control", "blue", "green"],
                "weights": [0.5, 0.3, 0.2],
            },
        ],
    },
}


def ensure_growthbook(argv: list[str]) -> None:
    """Re-run in ``benchmarks/.venv-growthbook`` (creating it if needed) unless GrowthBook imports."""
    try:
        import growthbook  # noqa: F401
    except ImportError:
        pass
    else:
        return
    if Path(sys.prefix).resolve() == GROWTHBOOK_VENV.resolve():
        raise SystemExit(f"growthbook is not installed in {GROWTHBOOK_VENV}; delete it and re-run")
    if not GROWTHBOOK_PYTHON.exists():
        base = getattr(sys, "_base_executable", None) or "python3"
        print(f"creating {GROWTHBOOK_VENV} (GrowthBook lives only there)", file=sys.stderr)
        subprocess.run([base, "-m", "venv", str(GROWTHBOOK_VENV)], check=True)
        subprocess.run(
            [
                str(GROWTHBOOK_PYTHON),
                *("-m", "pip", "install", "--quiet"),
                *("-c", str(REPO / "constraints.txt")),
                *("growthbook", "mmh3", "google-re2"),
            ],
            check=True,
        )
    print(f"installing ./sdk into {GROWTHBOOK_VENV}", file=sys.stderr)
    subprocess.run(
        [
            str(GROWTHBOOK_PYTHON),
            *("-m", "pip", "install", "--quiet", "--no-deps", "--force-reinstall", str(REPO / "sdk")),
        ],
        check=True,
    )
    os.execv(str(GROWTHBOOK_PYTHON), [str(GROWTHBOOK_PYTHON), str(Path(__file__).resolve()), *argv])


def check_growthbook_agrees(ruleset: Any, gb: Any, users: list[dict[str, Any]]) -> dict[str, Any]:
    """The GrowthBook features must be the same flags: same rule matches, same values, similar split.

    Bucketing differs by design (GrowthBook hashes with FNV-1a, we with MurmurHash3), so split
    users may land in different variants; the shares must still agree.
    """
    from flagsvc_sdk.engine import evaluate

    report: dict[str, Any] = {}
    for key in ("simple", "complex"):
        forced_mismatch = 0
        ours_split: dict[Any, int] = {}
        theirs_split: dict[Any, int] = {}
        for user in users:
            ours = evaluate(ruleset, key, user)
            gb.set_attributes({"id": user["id"], **user["attributes"]})
            theirs = gb.eval_feature(key)
            if (ours.reason == "RULE_MATCH") != (theirs.source == "force") or (
                ours.reason == "RULE_MATCH" and ours.value != theirs.value
            ):
                forced_mismatch += 1
            if ours.reason == "PERCENTAGE_ROLLOUT":
                ours_split[ours.value] = ours_split.get(ours.value, 0) + 1
            if theirs.source == "experiment":
                theirs_split[theirs.value] = theirs_split.get(theirs.value, 0) + 1
        if forced_mismatch:
            raise SystemExit(f"GrowthBook {key!r} disagrees on {forced_mismatch} rule matches")
        total_ours, total_theirs = sum(ours_split.values()), sum(theirs_split.values())
        report[key] = {
            "users": len(users),
            "rule_matches_agree": True,
            "split_ours": {str(k): round(v / total_ours, 3) for k, v in sorted(ours_split.items())},
            "split_growthbook": {str(k): round(v / total_theirs, 3) for k, v in sorted(theirs_split.items())},
        }
    return report


def breakdown(ruleset: Any, users: list[dict[str, Any]]) -> dict[str, Any]:
    """The pieces of one evaluation of the simple flag, each timed alone over the same users."""
    from bisect import bisect_right

    import mmh3
    from flagsvc_sdk.engine import evaluate
    from flagsvc_sdk.engine.results import EvaluationResult

    flag = ruleset.flags["simple"]
    when = flag.rules[0].when
    outcome = flag.rules[0].outcome
    prefix, shares = flag.prefix, flag.default_shares

    def loop(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                user["id"], user["attributes"]

    def bucket(loops: int) -> None:
        hash_ = mmh3.hash
        for _ in range(loops):
            for user in users:
                uid = user["id"]
                uid.isascii() and hash_(prefix + uid, 0, False) / 4294967296

    def rule(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                when(user["id"], user["attributes"])

    def split(loops: int) -> None:
        for _ in range(loops):
            for _user in users:
                bisect_right(shares, 0.5)

    def result(loops: int) -> None:
        for _ in range(loops):
            for _user in users:
                EvaluationResult(outcome, 0.5)

    def tuple_result(loops: int) -> None:
        for _ in range(loops):
            for _user in users:
                (outcome, 0.5)  # noqa: B018

    def to_dict(loops: int) -> None:
        for _ in range(loops):
            for user in users:
                evaluate(ruleset, "simple", user).to_dict()

    return {
        "loop over users, read id + attributes": timed(loop),
        "loop + bucket (prefix + id, isascii, mmh3, / 2**32)": timed(bucket),
        "loop + rule predicate (country eq)": timed(rule),
        "bisect over the default split": timed(split),
        "EvaluationResult(outcome, bucket)": timed(result),
        "(for scale) a 2-tuple instead": timed(tuple_result),
        "evaluate(...).to_dict() (what the server calls)": timed(to_dict),
    }


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--users", type=int, default=100_000, help="distinct users (100000)")
    parser.add_argument("--rounds", type=int, default=7, help="rounds; the median is reported (7)")
    parser.add_argument("--min-time", type=float, default=0.2, help="seconds per sample (0.2)")
    parser.add_argument(
        "--growthbook-users",
        type=int,
        default=20_000,
        help="users per GrowthBook sample, a prefix of the same list (20000)",
    )
    parser.add_argument("--no-growthbook", action="store_true", help="skip GrowthBook")
    parser.add_argument(
        "--pure", action="store_true", help="the plain-Python engine from sdk/ (not the compiled build)"
    )
    parser.add_argument("--no-breakdown", action="store_true", help="skip the cost breakdown")
    parser.add_argument("--json", help="write the results as JSON here")
    args = parser.parse_args()
    if not args.no_growthbook:
        ensure_growthbook(sys.argv[1:])
    if args.pure:
        sys.path.insert(0, str(REPO / "sdk"))

    import mmh3
    from flagsvc_sdk.engine import COMPILED, compile_ruleset, evaluate, validate_flag

    if args.pure and COMPILED:
        raise SystemExit("--pure: the compiled build was imported instead of sdk/")

    ruleset = compile_ruleset(
        tenant=TENANT,
        version="1",
        flags=[{**validate_flag(doc), "version": 1} for doc in (SIMPLE_FLAG, COMPLEX_FLAG)],
        segments=[],
    )
    users = make_users(args.users)
    ids = [user["id"] for user in users]
    contenders: dict[str, Any] = {}
    ops: dict[str, int] = {}

    def floor(loops: int) -> None:
        hash_ = mmh3.hash
        flags = ruleset.flags
        for _ in range(loops):
            for uid in ids:
                flags["simple"]
                hash_(f"acme:flag:{uid}", 0, False)

    def engine(key: str) -> Any:
        def run(loops: int) -> None:
            evaluate_ = evaluate
            for _ in range(loops):
                for user in users:
                    evaluate_(ruleset, key, user)

        return run

    contenders["floor (mmh3 + dict lookup)"] = timed(floor)
    contenders["engine simple"] = timed(engine("simple"))
    contenders["engine complex"] = timed(engine("complex"))
    for name in contenders:
        ops[name] = len(users)

    agreement = None
    gb_version = None
    if not args.no_growthbook:
        import growthbook
        from growthbook import GrowthBook

        gb_version = getattr(growthbook, "__version__", "?")
        gb = GrowthBook(features=GROWTHBOOK_FEATURES)
        agreement = check_growthbook_agrees(ruleset, gb, users[:5000])
        gb_users = [{"id": u["id"], **u["attributes"]} for u in users[: args.growthbook_users]]

        def growthbook_run(key: str) -> Any:
            def run(loops: int) -> None:
                set_attributes, eval_feature = gb.set_attributes, gb.eval_feature
                for _ in range(loops):
                    for attributes in gb_users:
                        set_attributes(attributes)
                        eval_feature(key)

            return run

        contenders["growthbook simple"] = timed(growthbook_run("simple"))
        contenders["growthbook complex"] = timed(growthbook_run("complex"))
        ops["growthbook simple"] = ops["growthbook complex"] = len(gb_users)

    breakdown_names = []
    if not args.no_breakdown:
        for name, run in breakdown(ruleset, users).items():
            contenders[name] = run
            ops[name] = len(users)
            breakdown_names.append(name)

    # Warm up every contender, then fix its loop count so that one sample lasts >= --min-time.
    sized = {}
    for name, run in contenders.items():
        run(1)
        sized[name] = (run, autorange(run, args.min_time))
    samples = interleaved(sized, args.rounds, ops)
    ns = {name: median(values) * 1e9 for name, values in samples.items()}
    parts = {name: ns.pop(name) for name in breakdown_names}
    floor_ns = ns["floor (mmh3 + dict lookup)"]

    rows = []
    for name, value in ns.items():
        row = [name, f"{value:,.0f}", spread(samples[name]), f"{value / floor_ns:.2f}x"]
        rows.append(row)
    results: dict[str, Any] = {
        "benchmark": "engine",
        "machine": machine(),
        "command": " ".join([sys.executable, *sys.argv]),
        "users": len(users),
        "engine_build": "mypyc-compiled" if COMPILED else "plain Python",
        "rounds": args.rounds,
        "ns_per_eval": ns,
        "samples_ns": {k: [v * 1e9 for v in vs] for k, vs in samples.items()},
        "ratio_to_floor": {k: v / floor_ns for k, v in ns.items()},
        "growthbook_version": gb_version,
        "growthbook_agreement": agreement,
    }
    targets = [
        (
            "simple ≤ 1.5x floor",
            ns["engine simple"] / floor_ns,
            ns["engine simple"] / floor_ns <= TARGET_SIMPLE,
        ),
        (
            "complex ≤ 3x floor",
            ns["engine complex"] / floor_ns,
            ns["engine complex"] / floor_ns <= TARGET_COMPLEX,
        ),
    ]
    if gb_version is not None:
        for key in ("simple", "complex"):
            speedup = ns[f"growthbook {key}"] / ns[f"engine {key}"]
            targets.append((f"{key} ≥ 20x faster than GrowthBook", speedup, speedup >= TARGET_VS_GROWTHBOOK))
    results["targets"] = [{"target": t, "value": round(v, 2), "met": ok} for t, v, ok in targets]

    print(header("Engine: ns per evaluation"))
    print(f"{len(users):,} distinct users, median of {args.rounds} interleaved rounds, gc off")
    print(f"engine: {results['engine_build']} (flagsvc_sdk.engine.COMPILED = {COMPILED})")
    if gb_version is not None:
        print(f"growthbook {gb_version}: {len(gb_users):,} users per sample (same list, prefix)")
    print()
    print(table(["contender", "ns/eval (median)", "spread", "x floor"], rows))
    print()
    print(
        table(
            ["target", "measured", "verdict"],
            [[t, f"{v:.2f}x", verdict(ok)] for t, v, ok in targets],
        )
    )
    if agreement:
        print()
        for key, report in agreement.items():
            print(
                f"GrowthBook parity ({key}, {report['users']} users): rule matches agree; split "
                f"ours {report['split_ours']} vs growthbook {report['split_growthbook']}"
            )
    if parts:
        results["breakdown_ns"] = parts
        print()
        print("Where an evaluation of the simple flag goes (each line: that piece alone, in the")
        print("same loop over the same users; the bare loop is the first line):")
        print()
        print(table(["piece", "ns (median)"], [[k, f"{v:,.0f}"] for k, v in parts.items()]))
    write_json(args.json, results)


if __name__ == "__main__":
    main()
