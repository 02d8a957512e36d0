"""Module 3 benchmark: the course's CPU password crackers against hashcat, side by side.

The course's MD5 and SHA-256 crackers (Rust, multi-buffer SIMD, rayon on every core; the
`hash_rate` example) against hashcat's own benchmark on the same processor (`hashcat -b`),
alternated over several rounds because a shared machine is noisy. Goal: the course's rate
>= 0.5 of hashcat's, best against best.

What the hashcat figure is: hashcat is the only native cracker Debian packages, and on a
machine without GPU it runs its OpenCL kernels (written and tuned for GPUs) on PoCL, a generic
OpenCL runtime for CPUs, not a vendor's. Where hashcat refuses a device or a runtime, it is
rerun with `--force`, against its own warning, and the figure is printed as forced. Both sides
take shortcuts (hashcat's benchmark uses its hand-optimised kernels), each on its own keyspace.
So the ratio says how the course's cracker compares with hashcat *on this runtime*, not with
hashcat at its best (on a GPU, or on a CPU runtime it supports).

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
sys.path.insert(0, str(REPO / "kernel"))
from paths import parcours_home  # noqa: E402

HOME = parcours_home()
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


class Hashcat:
    """What one `hashcat -b -m MODE` run measured, and on what."""

    def __init__(self, mode):
        self.forced = False
        output, speeds = self._run(mode, force=False)
        if not speeds:
            # hashcat refused (a device or runtime it does not trust): force it, and say so.
            self.refusal = self._warnings(output)
            self.forced = True
            output, speeds = self._run(mode, force=True)
        if not speeds:
            sys.exit(f"hashcat -b -m {mode} printed no speed, even with --force; is an OpenCL "
                     "driver installed (pocl-opencl-icd)?\n" + output[-2000:])
        self.rate = speeds.get("*", sum(speeds.values()))
        self.warnings = self._warnings(output)
        platform = re.search(r"OpenCL API \((OpenCL [\d.]+ [^ ,]+ [^ ,]+)", output)
        self.platform = platform.group(1) if platform else "an unnamed OpenCL platform"
        self.devices = re.findall(r"^\* Device #\d+: ([^,]+), \d+/\d+ MB", output, re.M)

    @staticmethod
    def _run(mode, force):
        # The processor only, as the course's cracker: no CUDA or HIP GPU, OpenCL CPU devices.
        command = ["hashcat", "-b", "-m", str(mode), "--backend-ignore-cuda", "--backend-ignore-hip",
                   "-D", "1"] + (["--force"] if force else [])
        result = subprocess.run(command, capture_output=True, text=True)
        output = result.stdout + result.stderr
        speeds = {}
        for device, value, unit in re.findall(r"Speed\.#(\*|\d+)\.*:\s*([\d.]+)\s*([kMGT]?H/s)", output):
            speeds[device] = float(value) * UNITS[unit]
        return output, speeds

    @staticmethod
    def _warnings(output):
        """hashcat's warnings about devices and runtimes, as it printed them."""
        keys = ("skipp", "native", "expect", "unstable", "outdated", "broken")
        return [line.strip() for line in output.splitlines()
                if any(key in line.lower() for key in keys)]


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
    # Release builds: where cargo would put them, else beside the course's other builds.
    target = Path(os.environ.get("CARGO_TARGET_DIR") or HOME / "target")
    env = dict(os.environ, CARGO_TARGET_DIR=str(target))
    print("building the Rust example (release)...", flush=True)
    subprocess.run(["cargo", "build", "--release", "-q", "-p", "parcours-gpu", "--example", "hash_rate"],
                   cwd=REPO, env=env, check=True)
    ours_program = target / "release" / "examples" / "hash_rate"

    ours = {name: [] for name, _, _ in HASHES}
    theirs = {name: [] for name, _, _ in HASHES}
    runs = []
    simd = threads = "?"
    for round_ in range(1, args.rounds + 1):
        print(f"round {round_} of {args.rounds}...", flush=True)
        output = subprocess.run([str(ours_program), str(args.seconds)], check=True,
                                capture_output=True, text=True).stdout
        simd = next((l.split(maxsplit=1)[1] for l in output.splitlines() if l.startswith("simd ")), "?")
        threads = int(figure(output, "threads"))
        for name, key, mode in HASHES:
            ours[name].append(figure(output, f"{key}_hashes_per_second"))
            hashcat = Hashcat(mode)
            runs.append(hashcat)
            theirs[name].append(hashcat.rate)

    version = subprocess.run(["hashcat", "--version"], capture_output=True, text=True).stdout.strip()
    forced = sum(run.forced for run in runs)
    devices = sorted({device for run in runs for device in run.devices})
    print(f"\nModule 3: CPU password cracking on {threads} threads, {args.rounds} rounds.")
    print(f"  course: Rust, {simd} multi-buffer hashing, rayon; shortcuts on (45 of MD5's 64 steps, "
          "57 of SHA-256's 64 rounds)")
    platform = runs[0].platform
    if "pocl" in platform.lower():
        platform += ", a generic OpenCL runtime for CPUs, not a vendor's"
    print(f"  hashcat {version}: its GPU-tuned OpenCL kernels on {platform};")
    print(f"    device: {', '.join(devices) or '?'}; hand-optimised kernels (-O), its own benchmark "
          "keyspace;")
    if forced:
        print(f"    FORCED: {forced} of {len(runs)} runs refused without --force and were rerun with it, "
              "against hashcat's warning:")
        for line in sorted({line for run in runs if run.forced for line in run.refusal}):
            print(f"      {line}")
    else:
        print(f"    ran without --force ({len(runs)} runs): hashcat accepted this runtime")
    for line in sorted({line for run in runs for line in run.warnings}):
        print(f"    hashcat warned: {line}")
    print("  so the ratio compares with hashcat on this runtime, not with hashcat at its best.")
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
