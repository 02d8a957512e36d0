"""Module 1 benchmarks, printed as ratios measured side by side in one run.

1. The course's STREAM triad (Rust, rayon) against a C triad compiled with `gcc -O3 -fopenmp`,
   same array size, same number of threads (the CPUs this process may run on, from its
   affinity mask), alternated over several rounds. Goal: >= 0.90.
2. A CPU-bound parallel workload on 2 threads against 1 thread, exactly one work item per
   thread, the two alternated round after round; min, median and max of the rounds.
   Goal: >= 1.9x, by the median.

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
sys.path.insert(0, str(REPO / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()


def figure(output, name):
    for line in output.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    sys.exit(f"no `{name}` in the output:\n{output}")


def check_threads(program, output, expected):
    ran = int(figure(output, "threads"))
    if ran != expected:
        sys.exit(f"{program} ran on {ran} threads, not {expected}: the comparison would be unfair")


def run(command):
    return subprocess.run(command, check=True, capture_output=True, text=True).stdout


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--len", type=int, default=20_000_000, help="f64 per array (default 20M: 480 MB)")
    parser.add_argument("--runs", type=int, default=10, help="triad runs per program, best kept")
    parser.add_argument("--rounds", type=int, default=5, help="alternations of the two triads")
    parser.add_argument("--speedup-rounds", type=int, default=15,
                        help="alternations of 1 and 2 threads (default 15)")
    args = parser.parse_args()

    # Release builds: where cargo would put them, else beside the course's other builds.
    target = Path(os.environ.get("CARGO_TARGET_DIR") or HOME / "target")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the Rust examples (release) and the C triad (gcc -O3 -fopenmp)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours-limits",
                    "--example", "stream_triad", "--example", "speedup"],
                   cwd=REPO, env=env, check=True)
    rust_triad = target / "release" / "examples" / "stream_triad"
    c_triad = Path(tempfile.mkdtemp()) / "stream_triad_c"
    subprocess.run(["gcc", "-O3", "-fopenmp", str(REPO / "tests/bench/stream_triad.c"),
                    "-o", str(c_triad)], check=True)

    # The CPUs this process may run on (taskset, cgroups' cpusets), not all the machine has:
    # both programs get this many threads, and each says how many it ran.
    threads = len(os.sched_getaffinity(0))
    load_before = os.getloadavg()[0]
    rust, c = [], []
    for _ in range(args.rounds):
        output = run([str(rust_triad), str(args.len), str(args.runs), str(threads)])
        check_threads("the Rust triad", output, threads)
        rust.append(figure(output, "triad_bytes_per_second"))
        output = run(["env", f"OMP_NUM_THREADS={threads}", str(c_triad), str(args.len), str(args.runs)])
        check_threads("the C triad", output, threads)
        c.append(figure(output, "triad_bytes_per_second"))
    rust_best, c_best = max(rust), max(c)

    print(f"timing 2 threads against 1, {args.speedup_rounds} rounds...", flush=True)
    speedup_output = run([str(target / "release" / "examples" / "speedup"),
                          "--threads", "2", "--rounds", str(args.speedup_rounds)])
    low, median, high = (figure(speedup_output, f"speedup_{name}") for name in ("min", "median", "max"))
    load_after = os.getloadavg()[0]

    print(f"\nModule 1 benchmarks on {threads} threads (this process's CPU affinity; "
          f"{os.cpu_count()} CPUs on the machine)")
    # Other programs' threads take cores from both sides, and most from the 2-thread runs.
    print(f"machine load (1-minute load average) before / after: {load_before:.1f} / {load_after:.1f}"
          f"{'  -- a loaded machine: the speed-up is the share of the cores this benchmark got' if load_before > 0.5 * threads else ''}")
    print(f"STREAM triad: {args.len:,} f64 per array, {args.rounds} alternating rounds of "
          f"{args.runs} runs, best run of each round:")
    print(f"  Rust (rayon):         best {rust_best / 1e9:6.2f} GB/s, "
          f"median {statistics.median(rust) / 1e9:6.2f} GB/s")
    print(f"  C (gcc -O3 -fopenmp): best {c_best / 1e9:6.2f} GB/s, "
          f"median {statistics.median(c) / 1e9:6.2f} GB/s")
    ratio = rust_best / c_best
    print(f"  ratio Rust / C, best of each: {ratio:.3f}  (goal >= 0.90: "
          f"{'met' if ratio >= 0.9 else 'missed'})")
    print(f"  ratio Rust / C, medians:      {statistics.median(rust) / statistics.median(c):.3f}")
    print(f"CPU-bound work, 2 threads over 1 (one work item per thread, {args.speedup_rounds} "
          f"alternating rounds):")
    print(f"  min {low:.3f}x, median {median:.3f}x, max {high:.3f}x  (goal >= 1.9 by the median: "
          f"{'met' if median >= 1.9 else 'missed'})")


if __name__ == "__main__":
    main()
