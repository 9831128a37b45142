"""Every benchmark in bench/ still runs: `--small` sizes, exit 0, and its figure lines printed.

Timings are not judged here (this machine is shared and CI is noisy); BENCHMARKS.md holds the measured figures.
"""

from __future__ import annotations

import subprocess
import sys

import pytest

from tests.harness import ROOT, child_env

# Each script and the figures its --small run must print (the targets' figures, at least).
EXPECTED = {
    "ack_latency.py": ["ack.median", "ack.p99", "ack.max", "ack.over_3s"],
    "slot_utilisation.py": ["slots.slots3.jobs6.callbacks.ratio", "slots.slots3.jobs6.callbacks.rejections_429",
                            "slots.slots3.jobs6.callbacks.max_executing"],
    "callbacks.py": ["callbacks.intake.bot", "callbacks.intake.bare", "callbacks.intake.ratio",
                     "callbacks.e2e.rate_median_round", "callbacks.e2e.latency_p99"],
    "history.py": ["history.startup_ready", "history.startup_first_ack", "history.rss", "history.jobs_page_p99",
                   "history.store_page_p99"],
    "multiprocess.py": ["multiprocess.p2.slots3.jobs6.makespan", "multiprocess.p2.slots3.jobs6.ratio",
                        "multiprocess.p2.slots3.jobs6.max_executing"],
}


@pytest.mark.timeout(180)
@pytest.mark.parametrize("script", sorted(EXPECTED))
def test_benchmark_runs_small(script: str) -> None:
    command = [sys.executable, str(ROOT / "bench" / script), "--small", "--validate"]
    result = subprocess.run(command, cwd=ROOT, env=child_env({}), capture_output=True, text=True, timeout=170,
                            check=False, stdin=subprocess.DEVNULL)
    output = result.stdout + result.stderr
    assert result.returncode == 0, f"{script} exited {result.returncode}:\n{output[-4000:]}"
    figures = {line.split(" = ", 1)[0].removeprefix("figure ") for line in result.stdout.splitlines()
               if line.startswith("figure ") and " = " in line}
    missing = [name for name in EXPECTED[script] if name not in figures]
    assert not missing, f"{script} did not print {missing}:\n{result.stdout[-4000:]}"
    # The fake checked every request against Discord's spec; the benchmark reports any it refused.
    assert "spec errors" not in output, output[-4000:]
    # A benchmark whose bot logged errors measured a broken bot.
    assert "bot logged" not in output, output[-4000:]
