"""Module 1 benchmarks, printed as ratios measured side by side in one run.

1. The course's STREAM triad (Rust, rayon) against a C triad compiled with `gcc -O3 -fopenmp`,
   same array size, same number of threads, alternated over several rounds. Goal: >= 0.90.
2. A CPU-bound parallel workload on 2 threads against 1 thread. Goal: >= 1.9x.

    ./course bench module1     # or: python tests/bench/module1.py [--len N] [--rounds R]
"""

import argparse
import os
import statistics
import subprocess
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("PARCOURS_HOME") or Path.home() / ".cache" / "parcours")


def figure(output, name):
    for line in output.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    sys.exit(f"no `{name}` in the output:\n{output}")


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--len", type=int, default=20_000_000, help="f64 per array (default 20M: 480 MB)")
    parser.add_argument("--runs", type=int, default=10, help="triad runs per program, best kept")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two programs")
    args = parser.parse_args()

    target = HOME / "target"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the Rust examples (release) and the C triad (gcc -O3 -fopenmp)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours",
                    "--example", "stream_triad", "--example", "speedup"],
                   cwd=REPO, env=env, check=True)
    rust_triad = target / "release" / "examples" / "stream_triad"
    c_triad = Path(tempfile.mkdtemp()) / "stream_triad_c"
    subprocess.run(["gcc", "-O3", "-fopenmp", str(REPO / "tests/bench/stream_triad.c"),
                    "-o", str(c_triad)], check=True)

    threads = str(os.cpu_count())
    rust, c = [], []
    for _ in range(args.rounds):
        rust.append(figure(run([str(rust_triad), str(args.len), str(args.runs)]),
                           "triad_bytes_per_second"))
        c.append(figure(run(["env", f"OMP_NUM_THREADS={threads}", str(c_triad),
                             str(args.len), str(args.runs)]), "triad_bytes_per_second"))
    rust_best, c_best = max(rust), max(c)
    speedup_output = run([str(target / "release" / "examples" / "speedup")])
    speedup = figure(speedup_output, "speedup_2_over_1")

    print(f"\nModule 1 benchmarks on {threads} threads ({args.len:,} f64 per array, "
          f"{args.rounds} rounds of {args.runs} runs):")
    print(f"  STREAM triad, Rust (rayon):     best {rust_best / 1e9:6.2f} GB/s, "
          f"median {statistics.median(rust) / 1e9:6.2f} GB/s")
    print(f"  STREAM triad, C (gcc -O3 -fopenmp): best {c_best / 1e9:6.2f} GB/s, "
          f"median {statistics.median(c) / 1e9:6.2f} GB/s")
    ratio = rust_best / c_best
    print(f"  ratio Rust / C, best of each:   {ratio:.3f}  (goal >= 0.90: "
          f"{'met' if ratio >= 0.9 else 'missed'})")
    print(f"  ratio Rust / C, medians:        {statistics.median(rust) / statistics.median(c):.3f}")
    print(f"  CPU-bound work, 2 threads over 1: {speedup:.3f}x  (goal >= 1.9: "
          f"{'met' if speedup >= 1.9 else 'missed'})")


if __name__ == "__main__":
    main()
