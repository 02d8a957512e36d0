"""The tests of the crates built only inside the course kernel (the data engines': polars,
DataFusion with Ballista), run against the kernel's own build of their libraries.

    python tests/kernel_only_crates.py CRATE... [-- ARGS]   (`./course test` names them:
                                                             KERNEL_ONLY; ARGS go to the tests)

A release build of these crates would compile the engines a second time (10 to 20 minutes
each on 2 cores). Their tests build instead as the kernel builds a cell: its profile
(launch.cells_profile), `-Cprefer-dynamic` and `--target <host>`, in a copy of the kernel's
first build slot whose compiled libraries are hard-linked (seconds), so cargo compiles only the
crates' own code and tests. The kernel's slot itself is left as it was: cargo names a course
crate's dylib without a hash (libparcours.so), and this build of the toolbox, as a member of
the course's workspace, is not the kernel's.
"""

import os
import shutil
import subprocess
import sys
import time
from pathlib import Path

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
import launch  # noqa: E402
from paths import REPO  # noqa: E402


def host_triple():
    info = subprocess.run(["rustc", "-vV"], capture_output=True, text=True, check=True).stdout
    return next(line.split(": ", 1)[1] for line in info.splitlines() if line.startswith("host: "))


def copy_of_the_kernels_build(folder):
    """A copy of the kernel's first slot's target folder in `folder`, libraries hard-linked."""
    built = launch.SLOTS / "slot-0" / "build" / "target"
    if not built.is_dir():
        sys.exit(f"the kernel's build ({built}) is missing: ./course setup builds it")
    shutil.rmtree(folder, ignore_errors=True)
    started = time.monotonic()
    shutil.copytree(built, folder / "target", symlinks=True, copy_function=launch.link_or_copy,
                    ignore=shutil.ignore_patterns("incremental"))
    print(f"    the kernel's build copied in {time.monotonic() - started:.1f} s", flush=True)
    return folder / "target"


def main(args):
    crates, test_args = (args[:args.index("--")], args[args.index("--"):]) if "--" in args else (args, [])
    if not crates:
        sys.exit(__doc__)
    folder = launch.SLOTS / "kernel-only-crates"
    target = copy_of_the_kernels_build(folder)
    profile = folder / "profile.toml"
    profile.write_text(launch.cells_profile(launch.find_lock(launch.SUPPORT_CRATE)))
    command = ["cargo", "test", "--config", str(profile), "--target", host_triple(), "-q",
               "-j", os.environ.get("CARGO_BUILD_JOBS", str(os.cpu_count() or 1))]
    env = dict(os.environ, CARGO_TARGET_DIR=str(target), CARGO_BUILD_BUILD_DIR=str(target),
               RUSTFLAGS="-Cprefer-dynamic")
    failed = []
    try:
        # One crate at a time, as a notebook loads it: together, cargo would unify the
        # features of the libraries they share, and build those libraries (and every engine
        # above them) again.
        for crate in crates:
            print(f"    {crate}", flush=True)
            if subprocess.run([*command, "-p", crate, *test_args], cwd=REPO, env=env).returncode != 0:
                failed.append(crate)
    finally:
        shutil.rmtree(folder, ignore_errors=True)
    if failed:
        sys.exit(f"the tests of {', '.join(failed)} failed (see above)")


if __name__ == "__main__":
    main(sys.argv[1:])
