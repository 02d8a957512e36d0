"""Kernel-latency benchmark: how long students wait for the course kernel.

Prints, for the course kernel on this machine:
- warm start: kernel start -> first result, compiled dependencies reused;
- the median latency of a trivial cell, and of a cell that runs a rayon parallel iterator;
- cold start: the same first result from an empty build cache (compiles every dependency;
  skipped with --no-cold).
Targets (issue 2): warm first result <= 5 s, trivial cell <= 0.3 s median.

    ./course bench            # or: python tests/bench/kernel_latency.py [--cells 15] [--no-cold]
"""

import argparse
import json
import os
import shutil
import statistics
import sys
import tempfile
import time
from pathlib import Path

from jupyter_client.kernelspec import KernelSpecManager
from jupyter_client.manager import KernelManager

TRIVIAL = "let x = 1 + 1; x"
RAYON = "(0..1_000_000u64).into_par_iter().map(|i| i % 7).sum::<u64>()"


def run_cell(client, code, timeout=1800):
    """Executes `code`; returns (seconds, text of the result and streams)."""
    texts = []

    def hook(msg):
        content = msg["content"]
        texts.append(content.get("text", "") or content.get("data", {}).get("text/plain", ""))

    started = time.monotonic()
    reply = client.execute_interactive(code, timeout=timeout, output_hook=hook)
    seconds = time.monotonic() - started
    text = "".join(texts)
    if reply["content"]["status"] != "ok" or "panicked" in text:
        sys.exit(f"cell failed: {code}\n{text}")
    return seconds, text


def first_result(kernel_name, kernel_spec_manager=None):
    """Starts a kernel; returns (seconds to ready, seconds to first result, manager, client)."""
    started = time.monotonic()
    manager = KernelManager(kernel_name=kernel_name)
    if kernel_spec_manager:
        manager.kernel_spec_manager = kernel_spec_manager
    manager.start_kernel()
    client = manager.client()
    client.start_channels()
    client.wait_for_ready(timeout=1800)
    ready = time.monotonic() - started
    run_cell(client, TRIVIAL)
    return ready, time.monotonic() - started, manager, client


def cold_kernelspec(home):
    """A kernelspec like the course's, with its caches in `home` (empty: a cold start)."""
    spec = json.loads(Path(KernelSpecManager().get_kernel_spec("parcours").resource_dir,
                           "kernel.json").read_text())
    real_home = spec.get("env", {}).get("PARCOURS_HOME", "")
    spec["env"] = {"PARCOURS_HOME": str(home),
                   "PARCOURS_EVCXR": str(Path(real_home) / "tools" / "bin" / "evcxr_jupyter")}
    kernels = home / "jupyter" / "kernels" / "parcours-cold"
    kernels.mkdir(parents=True)
    (kernels / "kernel.json").write_text(json.dumps(spec))
    manager = KernelSpecManager()
    manager.kernel_dirs = [str(home / "jupyter" / "kernels")]
    return manager


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--cells", type=int, default=15, help="cells per median")
    parser.add_argument("--no-cold", action="store_true", help="skip the cold start")
    args = parser.parse_args()

    figures = []
    ready, first, manager, client = first_result("parcours")
    figures.append(("warm start: kernel ready (kernel_info)", ready, None))
    figures.append(("warm start: first result", first, 5.0))
    try:
        trivial = [run_cell(client, TRIVIAL)[0] for _ in range(args.cells)]
        figures.append((f"trivial cell, median of {args.cells}", statistics.median(trivial), 0.3))
        rayon = [run_cell(client, RAYON)[0] for _ in range(args.cells)]
        figures.append((f"rayon cell, median of {args.cells}", statistics.median(rayon), None))
    finally:
        client.stop_channels()
        manager.shutdown_kernel(now=True)

    if not args.no_cold:
        home = Path(tempfile.mkdtemp(prefix="parcours-cold-"))
        try:
            print("cold start: compiling every dependency in an empty build cache...", flush=True)
            ready, first, manager, client = first_result("parcours-cold", cold_kernelspec(home))
            client.stop_channels()
            manager.shutdown_kernel(now=True)
            figures.append(("cold start: first result", first, None))
        finally:
            shutil.rmtree(home, ignore_errors=True)

    print(f"\nCourse kernel latency on {os.cpu_count()} cores:")
    for name, seconds, target in figures:
        verdict = "" if target is None else (
            f"  (target <= {target} s: {'met' if seconds <= target else 'MISSED'})")
        print(f"  {name:<42} {seconds:8.2f} s{verdict}")


if __name__ == "__main__":
    main()
