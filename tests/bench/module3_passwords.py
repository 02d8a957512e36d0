"""Module 3 benchmark: the course's CPU password crackers against hashcat, side by side.

The course's MD5 and SHA-256 crackers (Rust, multi-buffer SIMD, rayon on every core; the
`hash_rate` example) against hashcat's own benchmark on the same processor (`hashcat -b`,
OpenCL through PoCL, hand-optimised kernels), alternated over several rounds because a shared
machine is noisy. Goal: the course's rate >= 0.5 of hashcat's, best against best.

    ./course bench passwords     # or: python tests/bench/module3_passwords.py [--rounds R]

Needs hashcat and an OpenCL driver for the CPU (Debian/Ubuntu: hashcat, pocl-opencl-icd);
installs them with apt-get when missing and run as root.
"""

import argparse
import os
import re
import shutil
import statistics
import subprocess
import sys
from pathlib import Path

REPO = Path(__file__).resolve().parents[2]
HOME = Path(os.environ.get("PARCOURS_HOME") or Path.home() / ".cache" / "parcours")
PACKAGES = ["hashcat", "pocl-opencl-icd"]
HASHES = [("MD5", "md5", 0), ("SHA-256", "sha256", 1400)]
GOAL = 0.5
UNITS = {"H/s": 1.0, "kH/s": 1e3, "MH/s": 1e6, "GH/s": 1e9, "TH/s": 1e12}


def ensure_hashcat():
    if shutil.which("hashcat"):
        return
    install = ["apt-get", "install", "-y", *PACKAGES]
    if os.geteuid() == 0 and shutil.which("apt-get"):
        print(f"hashcat is missing: {' '.join(install)}", flush=True)
        env = dict(os.environ, DEBIAN_FRONTEND="noninteractive")
        subprocess.run(["apt-get", "update", "-qq"], env=env, check=False)
        if subprocess.run(install, env=env).returncode == 0 and shutil.which("hashcat"):
            return
    sys.exit("hashcat is not installed. On Debian or Ubuntu, as root: "
             f"apt-get install -y {' '.join(PACKAGES)} (hashcat needs an OpenCL driver for the "
             "CPU: PoCL). Elsewhere, see https://hashcat.net.")


def hashcat_rate(mode):
    """Hashes per second of `hashcat -b -m MODE`, all devices together."""
    result = subprocess.run(["hashcat", "-b", "-m", str(mode), "--force", "--quiet"],
                            capture_output=True, text=True)
    output = result.stdout + result.stderr
    speeds = {}
    for device, value, unit in re.findall(r"Speed\.#(\*|\d+)\.*:\s*([\d.]+)\s*([kMGT]?H/s)", output):
        speeds[device] = float(value) * UNITS[unit]
    if not speeds:
        sys.exit(f"hashcat -b -m {mode} printed no speed (exit status {result.returncode}); "
                 "is an OpenCL driver installed (pocl-opencl-icd)?\n" + output[-2000:])
    return speeds.get("*", sum(speeds.values()))


def figure(output, name):
    for line in output.splitlines():
        if line.startswith(name + " "):
            return float(line.split()[1])
    sys.exit(f"no `{name}` in the output:\n{output}")


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--rounds", type=int, default=3, help="alternations of the two (default 3)")
    parser.add_argument("--seconds", type=float, default=3.0,
                        help="seconds the course's cracker runs per hash and round (default 3)")
    args = parser.parse_args()

    if not shutil.which("cargo"):
        sys.exit("cargo is not installed: install Rust with rustup (https://rustup.rs).")
    ensure_hashcat()
    target = HOME / "target"
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the Rust example (release)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours", "--example", "hash_rate"],
                   cwd=REPO, env=env, check=True)
    ours_program = target / "release" / "examples" / "hash_rate"

    ours = {name: [] for name, _, _ in HASHES}
    theirs = {name: [] for name, _, _ in HASHES}
    simd = threads = "?"
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_} of {args.rounds}...", flush=True)
        output = subprocess.run([str(ours_program), str(args.seconds)], check=True,
                                capture_output=True, text=True).stdout
        simd = next((l.split(maxsplit=1)[1] for l in output.splitlines() if l.startswith("simd ")), "?")
        threads = int(figure(output, "threads"))
        for name, key, mode in HASHES:
            ours[name].append(figure(output, f"{key}_hashes_per_second"))
            theirs[name].append(hashcat_rate(mode))

    version = subprocess.run(["hashcat", "--version"], capture_output=True, text=True).stdout.strip()
    print(f"\nModule 3: CPU password cracking on {threads} threads, {args.rounds} rounds "
          f"(course: {simd}, rayon; hashcat {version}, OpenCL):")
    columns = ["course best", "median", "hashcat best", "median", "ratio best", "ratio median"]
    print(f"  {'hash':8}" + "".join(f"{column:>14}" for column in columns))
    met = True
    for name, _, _ in HASHES:
        ours_best, theirs_best = max(ours[name]), max(theirs[name])
        ours_median, theirs_median = statistics.median(ours[name]), statistics.median(theirs[name])
        ratio = ours_best / theirs_best
        met &= ratio >= GOAL
        cells = [f"{rate / 1e6:.1f} MH/s" for rate in (ours_best, ours_median, theirs_best, theirs_median)]
        cells += [f"{ratio:.2f}", f"{ours_median / theirs_median:.2f}"]
        print(f"  {name:8}" + "".join(f"{cell:>14}" for cell in cells))
    print(f"  goal: course / hashcat >= {GOAL} for each hash, best against best: "
          f"{'met' if met else 'missed'}")


if __name__ == "__main__":
    main()
