"""Module 3 benchmark: every GPU kernel against its CPU reference (rayon, all cores), as ratios.

Runs the `gpu_figures` example (release) on this machine's best adapter — lavapipe without a
GPU — and prints GPU / CPU for each kernel, kernel alone and with the host<->GPU copies, plus the
adapter's transfer rates, matrix-product GFLOP/s and hash rates. Both sides get the same
problem: the matrix product at the same size, password hashing on the same keyspace with the
same work per candidate (every step of the hash; the CPU crackers' shortcuts shown apart).

    ./course bench gpu             # or: python tests/bench/module3_gpu.py [--small]
"""

import argparse
import os
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
sys.path.insert(0, str(REPO / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--small", action="store_true", help="CI sizes (seconds, not minutes)")
    args = parser.parse_args()
    # Release builds: where cargo would put them, else beside the course's other builds.
    target = Path(os.environ.get("CARGO_TARGET_DIR") or HOME / "target")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the gpu_figures example (release)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours-gpu", "--example", "gpu_figures"],
                   cwd=REPO, env=env, check=True)
    command = [str(target / "release" / "examples" / "gpu_figures")] + (["--small"] if args.small else [])
    run = subprocess.run(command, capture_output=True, text=True)
    if run.returncode != 0:
        sys.exit(f"gpu_figures failed:\n{run.stdout}\n{run.stderr}")
    figures, facts = {}, {}
    for line in run.stdout.splitlines():
        name, _, value = line.partition(" ")
        try:
            figures[name] = float(value)
        except ValueError:
            facts[name] = value
    print(f"\nadapter: {facts['adapter'].replace('_', ' ')} ({facts['adapter_type']}), "
          f"kernel timing: {'GPU timestamps' if facts['timestamps'] == 'true' else 'wall clock'}, "
          f"CPU: {int(figures['cpu_threads'])} threads\n")
    print(f"{'kernel':<28} {'GPU kernel / CPU':>17} {'GPU + copies / CPU':>19}")
    rows = [("fma chain, 1 round", "fma1_gpu_flops", "fma1_gpu_with_transfers_flops", "fma1_cpu_flops"),
            ("fma chain, 64 rounds", "fma64_gpu_flops", "fma64_gpu_with_transfers_flops", "fma64_cpu_flops"),
            ("fma chain, 1024 rounds", "fma1024_gpu_flops", "fma1024_gpu_with_transfers_flops", "fma1024_cpu_flops"),
            ("sum", "sum_gpu_bytes_per_second", "sum_gpu_with_transfers_bytes_per_second", "sum_cpu_bytes_per_second"),
            ("blur, radius 4", "blur_gpu_pixels_per_second", "blur_gpu_with_transfers_pixels_per_second", "blur_cpu_pixels_per_second"),
            ("edges (Sobel)", "edges_gpu_pixels_per_second", "edges_gpu_with_transfers_pixels_per_second", "edges_cpu_pixels_per_second")]
    for label, gpu, with_copies, cpu in rows:
        print(f"{label:<28} {figures[gpu] / figures[cpu]:>16.2f}x {figures[with_copies] / figures[cpu]:>18.2f}x")
    size = int(figures["matmul_size"])
    for kernel in ("naive", "tiled", "register"):
        rate = figures[f"matmul_{kernel}_gpu_flops"]
        print(f"{f'matmul {size}³, ' + kernel:<28} {rate / figures['matmul_cpu_flops']:>16.2f}x {'':>19}"
              f"  ({rate / 1e9:.1f} GFLOP/s; CPU {figures['matmul_cpu_flops'] / 1e9:.1f}, same size)")
    print(f"\nhost -> GPU {figures['upload_bytes_per_second'] / 1e9:.2f} GB/s, "
          f"GPU -> host {figures['download_bytes_per_second'] / 1e9:.2f} GB/s")

    print(f"\nPassword hashing, 8 letters or digits (CPU: {facts['cpu_simd']}, all threads). The GPU and "
          "'CPU every step' do the same work per\ncandidate: built from a shared block and a table "
          "of first characters, hashed in full (64 steps), the whole digest compared.\n'CPU "
          "shortcuts' is the course's cracker, which stops early (45 of MD5's 64 steps, 57 of "
          "SHA-256's 64 rounds): not like for like.")
    print(f"{'hash':<10} {'GPU':>12} {'CPU every step':>16} {'GPU / CPU':>10} {'CPU shortcuts':>15}")
    for label, key in (("MD5", "md5"), ("SHA-256", "sha256")):
        gpu = figures[f"{key}_gpu_hashes_per_second"]
        every_step = figures[f"{key}_cpu_every_step_hashes_per_second"]
        shortcuts = figures[f"{key}_cpu_shortcuts_hashes_per_second"]
        print(f"{label:<10} {gpu / 1e6:>7.1f} MH/s {every_step / 1e6:>11.1f} MH/s "
              f"{gpu / every_step:>9.2f}x {shortcuts / 1e6:>10.1f} MH/s")


if __name__ == "__main__":
    main()
