"""Module 4 benchmark: polars against pandas on db-benchmark's group-by questions, one run.

The same data (db-benchmark's group-by set, K = 100, written by the course's generator) is
loaded in memory by each library, then questions q1-q5 are timed, best of 3 runs each, load
not timed (as db-benchmark does). polars is the Rust crate the course's notebooks use
(`parcours-frames-bench`); pandas is PyPI's, in the course's venv, reading the same CSV file.

Goal: polars >= 5x pandas at 1e7 rows.

    ./course bench dataframes            # 1e7 rows (about 0.5 GB of CSV, 2-3 GB of memory)
    ./course bench dataframes --small    # 1e6 rows
"""

import argparse
import json
import os
import subprocess
import sys
import time
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()

PANDAS_QUESTIONS = {
    "q1": lambda x: x.groupby("id1", as_index=False, sort=False, observed=True, dropna=False).agg({"v1": "sum"}),
    "q2": lambda x: x.groupby(["id1", "id2"], as_index=False, sort=False, observed=True, dropna=False).agg({"v1": "sum"}),
    "q3": lambda x: x.groupby("id3", as_index=False, sort=False, observed=True, dropna=False).agg({"v1": "sum", "v3": "mean"}),
    "q4": lambda x: x.groupby("id4", as_index=False, sort=False, observed=True, dropna=False).agg({"v1": "mean", "v2": "mean", "v3": "mean"}),
    "q5": lambda x: x.groupby("id6", as_index=False, sort=False, observed=True, dropna=False).agg({"v1": "sum", "v2": "sum", "v3": "sum"}),
}


def pandas_timings(csv, runs):
    import pandas as pd

    # db-benchmark's pandas script reads the ids as categories; the same here.
    frame = pd.read_csv(csv, dtype={"id1": "category", "id2": "category", "id3": "category"})
    timings = {}
    for name, question in PANDAS_QUESTIONS.items():
        best, groups = float("inf"), 0
        for _ in range(runs):
            start = time.perf_counter()
            answer = question(frame)
            best = min(best, time.perf_counter() - start)
            groups = len(answer)
        timings[name] = {"seconds": best, "groups": groups}
    return pd.__version__, timings


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rows", type=float, help="rows of data (default 1e7, 1e6 with --small)")
    parser.add_argument("--small", action="store_true", help="1e6 rows: a quick run")
    parser.add_argument("--runs", type=int, default=3, help="timings per question; the best is kept")
    args = parser.parse_args()
    rows = int(args.rows or (1e6 if args.small else 1e7))
    work = HOME / "bench" / f"dataframes-{rows}"
    target = HOME / "target"
    program = target / "release" / "parcours-frames-bench"
    # polars in release, as its users build it: ./course setup builds polars inside the kernel
    # only (at -O1), so the first run compiles it (about 15 min on 2 cores), later runs reuse it.
    print("building parcours-frames-bench (release; polars the first time: minutes)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours-frames", "--bin", program.name],
                   cwd=REPO, env=dict(os.environ, CARGO_TARGET_DIR=str(target)), check=True)
    print(f"db-benchmark group-by, {rows:.0e} rows, K=100, data in {work}", flush=True)
    polars = json.loads(subprocess.run([str(program), "--rows", str(rows), "--dir", str(work), "--runs", str(args.runs)],
                                       check=True, capture_output=True, text=True).stdout)
    version, pandas = pandas_timings(polars["csv"], args.runs)
    print(f"{'question':<26} {'polars (Rust)':>14} {'pandas ' + version:>14} {'pandas / polars':>16}")
    ratios = []
    for name, question in polars["questions"].items():
        theirs = pandas[name]
        if question["groups"] != theirs["groups"]:
            sys.exit(f"{name}: polars found {question['groups']} groups, pandas {theirs['groups']}: not the same data")
        ratio = theirs["seconds"] / question["seconds"]
        ratios.append(ratio)
        text = {"q1": "sum v1 by id1", "q2": "sum v1 by id1:id2", "q3": "sum v1 mean v3 by id3",
                "q4": "mean v1:v3 by id4", "q5": "sum v1:v3 by id6"}[name]
        print(f"{name + ' ' + text:<26} {question['seconds'] * 1e3:>11.1f} ms {theirs['seconds'] * 1e3:>11.1f} ms {ratio:>15.1f}x")
    geomean = 1.0
    for ratio in ratios:
        geomean *= ratio
    geomean **= 1 / len(ratios)
    print(f"geometric mean: polars {geomean:.1f}x faster than pandas ({polars['threads']} cores; goal >= 5x at 1e7 rows)")


if __name__ == "__main__":
    main()
