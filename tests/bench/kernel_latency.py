"""Kernel-latency benchmark: how long students wait for the course kernel.

Prints, for the course kernel on this machine:
- warm start: kernel start -> first result, compiled dependencies reused;
- the median latency of a trivial cell, of a cell declaring a variable, and of a cell that
  runs a rayon parallel iterator;
- cold start: kernel start -> first result from an empty build cache (compiles every
  dependency; skipped with --no-cold).
Targets (issue 2): warm first result <= 5 s, trivial cell <= 0.3 s median.

    ./course bench            # or: python tests/bench/kernel_latency.py [--cells 15] [--no-cold]
"""

import argparse
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kernels import EVCXR, Kernel, kernelspec_like_course  # noqa: E402

TRIVIAL = "1 + 1"
VARIABLE = "let x = 1 + 1; x"
RAYON = "(0..1_000_000u64).into_par_iter().map(|i| i % 7).sum::<u64>()"


def first_result(name="parcours", spec_dirs=None):
    """Starts a kernel and runs a trivial cell; returns (seconds to ready, to result, kernel)."""
    started = time.monotonic()
    kernel = Kernel(name, spec_dirs)
    outcome = kernel.run(TRIVIAL)
    if not outcome.ok:
        kernel.stop()
        sys.exit(f"the first cell failed:\n{outcome.text}")
    return kernel.ready_seconds, time.monotonic() - started, kernel


def median_latency(kernel, code, cells):
    times = []
    for _ in range(cells):
        outcome = kernel.run(code)
        if not outcome.ok:
            sys.exit(f"cell failed: {code}\n{outcome.text}")
        times.append(outcome.seconds)
    return statistics.median(times)


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=15, help="cells per median")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold start")
    args = parser.parse_args()

    figures = []
    ready, first, kernel = first_result()
    figures.append(("warm start: kernel ready (kernel_info)", ready, None))
    figures.append(("warm start: first result", first, 5.0))
    with kernel:
        figures.append((f"trivial cell `{TRIVIAL}`, median of {args.cells}",
                        median_latency(kernel, TRIVIAL, args.cells), 0.3))
        first_variable = kernel.run(VARIABLE).seconds
        figures.append(("first cell declaring a variable", first_variable, None))
        figures.append((f"cell declaring a variable, median of {args.cells}",
                        median_latency(kernel, VARIABLE, args.cells), None))
        figures.append((f"rayon cell, median of {args.cells}",
                        median_latency(kernel, RAYON, args.cells), None))

    if not args.no_cold:
        home = Path(tempfile.mkdtemp(prefix="parcours-cold-"))
        try:
            print("cold start: compiling every dependency in an empty build cache...", flush=True)
            specs = kernelspec_like_course(home, "parcours-cold", {
                "PARCOURS_HOME": str(home), "PARCOURS_EVCXR": str(EVCXR)})
            _, first, kernel = first_result("parcours-cold", [specs])
            kernel.stop()
            figures.append(("cold start: first result", first, None))
        finally:
            shutil.rmtree(home, ignore_errors=True)

    print(f"\nCourse kernel latency on {os.cpu_count()} cores:")
    for name, seconds, target in figures:
        verdict = "" if target is None else (
            f"  (target <= {target} s: {'met' if seconds <= target else 'missed'})")
        print(f"  {name:<46} {seconds:7.2f} s{verdict}")


if __name__ == "__main__":
    main()
