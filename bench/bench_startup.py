"""Start-up time: ``hfsent --help`` against ``python -c "import transformers"``, side by side.

Each command runs as a fresh process, the commands interleaved round by round (so a change in machine load
hits all of them alike), after one warm-up round that is not counted. Reported: the median wall time of each
and the ratio of ``hfsent --help`` to ``import transformers`` (the goal: at most 1.3). Also measured, for
reference: the bare interpreter, ``import hfsent``, and ``transformers --help`` where that command exists.

    python bench/bench_startup.py [--rounds 15]     # writes bench/results/startup.json

``hfsent`` is the console script beside this interpreter (else ``python -m hfsent``), run with this checkout
first on ``PYTHONPATH`` so that it measures the code here.
"""

from __future__ import annotations

import argparse
import json
import os
import platform
import shutil
import statistics
import subprocess
import sys
import time
from importlib import metadata
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
RESULTS = ROOT / "bench" / "results" / "startup.json"
GOAL = 1.3


def _script(name: str) -> str | None:
    """The console script ``name`` beside this interpreter, else on PATH."""
    beside = Path(sys.executable).parent / name
    return str(beside) if beside.is_file() else shutil.which(name)


def commands() -> dict[str, list[str]]:
    """Name -> command line of every measured start-up."""
    hfsent = _script("hfsent")
    transformers_cli = _script("transformers")
    found = {
        "python (bare interpreter)": [sys.executable, "-c", "pass"],
        'python -c "import transformers"': [sys.executable, "-c", "import transformers"],
        "hfsent --help": [hfsent, "--help"] if hfsent else [sys.executable, "-m", "hfsent", "--help"],
        'python -c "import hfsent"': [sys.executable, "-c", "import hfsent"],
    }
    if transformers_cli:
        found["transformers --help"] = [transformers_cli, "--help"]
    return found


def wall_time(command: list[str], env: dict[str, str]) -> float:
    """Seconds from start to exit of one run of ``command`` (output discarded; a failure raises)."""
    start = time.perf_counter()
    subprocess.run(command, env=env, cwd=ROOT, check=True, stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL)
    return time.perf_counter() - start


def machine() -> dict[str, object]:
    """Where the bench ran (without importing torch or transformers into this process)."""

    def version(package: str) -> str | None:
        try:
            return metadata.version(package)
        except metadata.PackageNotFoundError:
            return None

    return {
        "cpu": platform.processor() or platform.machine(),
        "cpu_cores": os.cpu_count(),
        "python": platform.python_version(),
        "torch": version("torch"),
        "transformers": version("transformers"),
    }


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=15, help="measured rounds (default 15)")
    parser.add_argument("--output", type=Path, default=RESULTS, help=f"results JSON (default {RESULTS})")
    args = parser.parse_args(argv)

    env = {**os.environ, "PYTHONPATH": os.pathsep.join(filter(None, [str(ROOT), os.environ.get("PYTHONPATH")]))}
    env.setdefault("HF_HUB_OFFLINE", "1")
    measured = commands()
    load_before = os.getloadavg()[0] if hasattr(os, "getloadavg") else None
    for command in measured.values():  # warm-up: file caches, .pyc files
        wall_time(command, env)
    samples: dict[str, list[float]] = {name: [] for name in measured}
    for _ in range(args.rounds):
        for name, command in measured.items():
            samples[name].append(wall_time(command, env))
    load_after = os.getloadavg()[0] if hasattr(os, "getloadavg") else None

    medians = {name: statistics.median(times) for name, times in samples.items()}
    ratio = medians["hfsent --help"] / medians['python -c "import transformers"']
    results = {
        "date": time.strftime("%Y-%m-%d"),
        "machine": machine(),
        "load_average_before": load_before,
        "load_average_after": load_after,
        "rounds": args.rounds,
        "median_seconds": {name: round(value, 4) for name, value in medians.items()},
        "ratio_hfsent_help_to_import_transformers": round(ratio, 3),
        "goal": f"<= {GOAL}",
        "goal_met": ratio <= GOAL,
        "samples_seconds": {name: [round(t, 4) for t in times] for name, times in samples.items()},
        "commands": {name: [Path(cmd[0]).name, *cmd[1:]] for name, cmd in measured.items()},
    }
    args.output.parent.mkdir(parents=True, exist_ok=True)
    args.output.write_text(json.dumps(results, indent=2) + "\n", encoding="utf-8")

    width = max(map(len, medians))
    for name, value in medians.items():
        print(f"{name:<{width}}  median {value:6.3f} s  (min {min(samples[name]):.3f}, max {max(samples[name]):.3f})")
    print(f"hfsent --help / import transformers: {ratio:.3f} (goal <= {GOAL}: {'met' if ratio <= GOAL else 'NOT met'})")
    print(f"load average {load_before} before, {load_after} after; results in {args.output}")
    return 0 if ratio <= GOAL else 1


if __name__ == "__main__":
    sys.exit(main())
