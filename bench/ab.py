"""Two checkouts side by side: each benchmark run alternately in A and in B, in one sitting, medians compared.

    .venv/bin/python bench/ab.py --a /path/to/old/checkout --b . --rounds 3 [--script ack_latency.py ...]

Each checkout runs its own `bench/<script>` with its own venv (`<checkout>/.venv/bin/python`), so each measures
its own code with its own benchmark; the figures (`figure <name> = <value> ...` lines) are collected per run and
the median of the rounds printed for A and B, with B/A. Runs alternate (A, B, A, B, ...) so a change in the
machine's load falls on both alike.
"""

from __future__ import annotations

import argparse
import re
import statistics
import subprocess
import sys
import time
from pathlib import Path

SCRIPTS = ("ack_latency.py", "slot_utilisation.py", "callbacks.py", "history.py")
FIGURE = re.compile(r"^figure (?P<name>\S+) = (?P<value>-?[0-9.]+(?:e-?[0-9]+)?)")


def run(checkout: Path, script: str, extra: list[str]) -> dict[str, float]:
    python = checkout / ".venv" / "bin" / "python"
    result = subprocess.run([str(python), f"bench/{script}", *extra], cwd=checkout, capture_output=True, text=True,
                            check=False, timeout=3600)
    if result.returncode != 0:
        sys.stderr.write(result.stdout[-3000:] + result.stderr[-3000:])
        raise SystemExit(f"{checkout}: bench/{script} exited {result.returncode}")
    found: dict[str, float] = {}
    for line in result.stdout.splitlines():
        if match := FIGURE.match(line):
            found[match["name"]] = float(match["value"])
    return found


def main() -> int:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0] if __doc__ else None)
    parser.add_argument("--a", type=Path, required=True, help="the checkout to compare against (before)")
    parser.add_argument("--b", type=Path, default=Path(), help="the checkout under test (after)")
    parser.add_argument("--rounds", type=int, default=3)
    parser.add_argument("--script", action="append", choices=SCRIPTS, help="only these (default: all)")
    parser.add_argument("--small", action="store_true", help="pass --small to every script (a dry run)")
    parser.add_argument("--b-arg", action="append", default=[],
                        help="an argument for B's scripts only (--b-arg=--backend=useapi: A has no such option)")
    args = parser.parse_args()
    extra = ["--small"] if args.small else []
    for script in args.script or SCRIPTS:
        runs: dict[str, list[dict[str, float]]] = {"A": [], "B": []}
        for round_number in range(1, args.rounds + 1):
            for side, checkout in (("A", args.a), ("B", args.b)):
                started = time.monotonic()
                runs[side].append(run(checkout.resolve(), script, extra + (args.b_arg if side == "B" else [])))
                print(f"# {script} round {round_number} {side}: {time.monotonic() - started:.0f}s", flush=True)
        names = sorted(set(runs["A"][0]) & set(runs["B"][0]))
        print(f"## {script}: median of {args.rounds} alternating rounds", flush=True)
        for name in names:
            a = statistics.median(r[name] for r in runs["A"] if name in r)
            b = statistics.median(r[name] for r in runs["B"] if name in r)
            ratio = f"{b / a:.3f}" if a else "n/a"
            print(f"ab {name}: A {a:g}  B {b:g}  B/A {ratio}", flush=True)
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
