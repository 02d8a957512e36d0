"""Kernel-latency benchmark: how long students wait for the course kernel, against plain evcxr.

Starts, in alternating rounds, *plain evcxr* (the same evcxr_jupyter binary with no start-up
script, no dependency and a build folder of its own, reused from round to round as the course
kernel reuses its build slot) and the course kernel as each notebook uses it: the toolbox
alone (notebooks 00, 22), or with the module crates that the notebook's first cell loads. In
each it measures:
- warm start: kernel start -> ready (kernel_info) -> first result (of the notebook's first
  cell's `:dep` lines with a trivial expression);
- the first cell that declares a variable (rust-analyzer warms up on the dependencies);
- the median of a trivial cell and of a cell declaring a variable;
- for the course kernel, a rayon cell.
It prints each figure's median over the rounds, its spread, and the ratio course / plain
measured in the same run. Goals (README, "Performance"): first result <= 1.5x, trivial cell
<= 1.3x, first `let` cell <= 1.5x. A cold start (empty build cache) is measured once with
--cold.

    ./course bench kernel      # or: python tests/bench/kernel_latency.py [--rounds 3] [--cells 15] [--cold]
"""

import argparse
import json
import os
import shutil
import statistics
import subprocess
import sys
import tempfile
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent))
from kernels import EVCXR, HOME, Kernel, kernelspec_like_course  # noqa: E402
from nbrun import use_this_clones_kernel  # noqa: E402

sys.path.insert(0, str(Path(__file__).resolve().parent.parent.parent / "kernel"))
from warm import module_configurations  # noqa: E402

TRIVIAL = "1 + 1"
VARIABLE = "let x = 1 + 1; x"
RAYON = "(0..1_000_000u64).into_par_iter().map(|i| i % 7).sum::<u64>()"
NOTEBOOKS = Path(__file__).resolve().parent.parent.parent / "notebooks"
GOALS = {"first result": 1.5, "trivial cell, median": 1.3, "first cell declaring a variable": 1.5}


def plain_evcxr_spec(folder):
    """A kernelspec for evcxr_jupyter as a user would run it: no configuration, no dependency;
    its build folder is kept under PARCOURS_HOME so that its starts are warm too."""
    build = HOME / "kernels" / "plain-evcxr" / "build"
    build.mkdir(parents=True, exist_ok=True)
    config = Path(folder) / "empty-config"
    config.mkdir(parents=True, exist_ok=True)
    spec = Path(folder) / "kernels" / "plain-evcxr"
    spec.mkdir(parents=True, exist_ok=True)
    (spec / "kernel.json").write_text(json.dumps({
        "argv": [str(EVCXR), "--control_file", "{connection_file}"],
        "display_name": "plain evcxr", "language": "rust",
        # evcxr links cells with -Cprefer-dynamic: they need Rust's libstd at load time, as in
        # the course kernel (kernel/launch.py).
        "env": {"EVCXR_TMPDIR": str(build), "EVCXR_CONFIG_DIR": str(config),
                "LD_LIBRARY_PATH": subprocess.run(
                    ["rustc", "--print", "target-libdir"], capture_output=True, text=True,
                    check=True).stdout.strip()}}))
    return spec.parent


def run_ok(kernel, code):
    outcome = kernel.run(code)
    if not outcome.ok:
        kernel.stop()
        sys.exit(f"cell failed: {code}\n{outcome.text}")
    return outcome.seconds


def one_round(name, spec_dirs, cells, with_rayon, first_lines=()):
    """Starts a kernel, runs the cells; returns {figure: seconds}."""
    figures = {}
    started = time.monotonic()
    kernel = Kernel(name, spec_dirs, cwd=NOTEBOOKS)
    figures["kernel ready (kernel_info)"] = kernel.ready_seconds
    with kernel:
        run_ok(kernel, "\n".join([*first_lines, TRIVIAL]))
        figures["first result"] = time.monotonic() - started
        figures["first cell declaring a variable"] = run_ok(kernel, VARIABLE)
        figures["trivial cell, median"] = statistics.median(
            run_ok(kernel, TRIVIAL) for _ in range(cells))
        figures["cell declaring a variable, median"] = statistics.median(
            run_ok(kernel, VARIABLE) for _ in range(cells))
        if with_rayon:
            figures["rayon cell, median"] = statistics.median(
                run_ok(kernel, RAYON) for _ in range(cells))
    return figures


def summary(values):
    median = statistics.median(values)
    return median, f"{median:6.2f} s ({min(values):.2f}-{max(values):.2f})"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternating rounds of both kernels")
    parser.add_argument("--cells", type=int, default=15, help="cells per median")
    parser.add_argument("--cold", action="store_true", help="also time a cold start, once")
    args = parser.parse_args()
    use_this_clones_kernel()

    # The kernel each notebook makes: the toolbox, or the toolbox and its modules' crates.
    kernels = {"toolbox (00, 22)": ()}
    for lines, notebooks in module_configurations().items():
        names = " + ".join(line.split()[1].removeprefix("parcours-") for line in lines)
        kernels[f"{names} ({', '.join(notebooks)})"] = lines
    scratch = Path(tempfile.mkdtemp(prefix="parcours-bench-"))
    plain_specs = plain_evcxr_spec(scratch)
    course, plain = {label: [] for label in kernels}, []
    try:
        # Warm every build first: the rounds then measure warm starts only.
        print("warming the kernels...", flush=True)
        one_round("plain-evcxr", [plain_specs], 1, False)
        for lines in kernels.values():
            one_round("parcours", None, 1, False, lines)
        for number in range(args.rounds):
            print(f"round {number + 1} of {args.rounds}...", flush=True)
            for label, lines in kernels.items():
                plain.append(one_round("plain-evcxr", [plain_specs], args.cells, False))
                course[label].append(one_round("parcours", None, args.cells, True, lines))

        cold = None
        if args.cold:
            home = scratch / "cold-home"
            print("cold start: compiling every dependency in an empty build cache...", flush=True)
            specs = kernelspec_like_course(scratch, "parcours-cold", {
                "PARCOURS_HOME": str(home), "PARCOURS_EVCXR": str(EVCXR)})
            started = time.monotonic()
            with Kernel("parcours-cold", [specs]) as kernel:
                run_ok(kernel, TRIVIAL)
            cold = time.monotonic() - started
    finally:
        shutil.rmtree(scratch, ignore_errors=True)

    print(f"\nKernel latency on {os.cpu_count()} cores, medians of {args.rounds} alternating "
          f"rounds (min-max); cells: medians of {args.cells}. Plain evcxr: "
          f"{len(plain)} starts, one before each course kernel's.")
    for label, rounds in course.items():
        print(f"\nthe course kernel with {label}")
        print(f"  {'':<36} {'course kernel':>22} {'plain evcxr':>22} {'ratio':>7}")
        for name in rounds[0]:
            ours, ours_text = summary([r[name] for r in rounds])
            if name in plain[0]:
                theirs, theirs_text = summary([r[name] for r in plain])
                ratio = ours / theirs
                goal = GOALS.get(name)
                verdict = "" if goal is None else f"  goal <= {goal}: {'met' if ratio <= goal else 'missed'}"
                print(f"  {name:<36} {ours_text:>22} {theirs_text:>22} {ratio:6.2f}x{verdict}")
            else:
                print(f"  {name:<36} {ours_text:>22}")
    if cold is not None:
        print(f"  {'cold start: first result':<36} {cold:6.2f} s")


if __name__ == "__main__":
    main()
