"""Start the course kernel and run a first cell, so later starts find everything built.

The first start on a machine compiles the toolbox and its dependencies inside the kernel (a few
minutes); later starts reuse them and answer in seconds. Then each set of module crates that a
notebook's first cell loads (`:dep parcours-gpu = ...`) is loaded once in a kernel of its own,
so that no student waits for a module's crate to compile. Exits non-zero, with the kernel's
message, if a first cell fails.
"""

import fcntl
import hashlib
import json
import re
import shutil
import subprocess
import sys
import threading
import time
from pathlib import Path

from jupyter_client.manager import start_new_kernel

import launch
from paths import KERNEL, REPO, use_this_clones_kernel
STARTUP_TIMEOUT = 1800
CELL_TIMEOUT = 1800
MODULE_DEP = re.compile(r"^:dep (parcours-[a-z0-9-]+) = .*$", re.MULTILINE)
# Programs a module's crate builds in the kernel's own build folder (reusing the kernel's
# build of their libraries), built here so that no lesson waits for them.
PROGRAMS = {"parcours-ballista": "parcours_ballista::cluster::program().unwrap();"}


def tick(done, started):
    while not done.wait(30):
        print(f"    still compiling, {time.monotonic() - started:.0f} s so far...", flush=True)


def module_configurations():
    """The distinct sets of module crates that notebooks load in their first code cell, as
    the cells' `:dep` lines (the same text, so the same build), with the notebooks using each."""
    configurations = {}
    for notebook in sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        cells = json.loads(notebook.read_text())["cells"]
        first = next((cell for cell in cells if cell["cell_type"] == "code"), None)
        source = "".join(first["source"]) if first else ""
        lines = tuple(match[0] for match in MODULE_DEP.finditer(source))
        if lines:
            configurations.setdefault(lines, []).append(notebook.stem[:2])
    return configurations


def warm(label, cell):
    """Starts a kernel, runs `cell`, stops it; exits with the kernel's words if it fails."""
    started = time.monotonic()
    done = threading.Event()
    threading.Thread(target=tick, args=(done, started), daemon=True).start()
    try:
        manager, client = start_new_kernel(kernel_name=KERNEL, startup_timeout=STARTUP_TIMEOUT,
                                           cwd=str(REPO / "notebooks"))
        outputs = []
        try:
            reply = client.execute_interactive(
                cell, timeout=CELL_TIMEOUT,
                output_hook=lambda msg: outputs.append(msg["content"].get("text", "")))
        finally:
            client.stop_channels()
            manager.shutdown_kernel(now=True)
    finally:
        done.set()
    text = "".join(outputs).strip()
    print(f"    {label} ready in {time.monotonic() - started:.1f} s: "
          f"{text.splitlines()[0] if text else ''}", flush=True)
    if reply["content"]["status"] != "ok" or "panicked" in text:
        sys.exit(f"the course kernel started, but its first cell failed ({label}):\n{text}")


def builds_fingerprint(configurations):
    """What the kernel's builds depend on: the crates' files, the lock, the launcher, evcxr,
    rustc, and the sets of crates the notebooks load. Unchanged since the last warm-up: the
    builds are there (`./course open` then starts in seconds)."""
    digest = hashlib.sha256(repr(sorted(configurations)).encode())
    digest.update(subprocess.run(["rustc", "-vV"], capture_output=True).stdout)
    files = [REPO / "Cargo.toml", REPO / "Cargo.lock", REPO / "kernel" / "launch.py"]
    files += sorted(path for path in (REPO / "support-crate").rglob("*")
                    if path.is_file() and "target" not in path.parts)
    for path in files:
        digest.update(str(path).encode() + b"\0" + path.read_bytes())
    evcxr = Path(launch.EVCXR)
    if evcxr.is_file():
        digest.update(f"{evcxr.stat().st_size} {evcxr.stat().st_mtime_ns}".encode())
    return digest.hexdigest()


def empty_other_free_slots():
    """Empties every slot but the first that no kernel holds: after a change, this warm-up
    rebuilds the first, and a kernel that takes another then seeds it again from the first
    (seconds) instead of compiling what changed in a student's cell, slower and with more
    memory (a stale second slot compiled the toolbox again in the first cell of 21, 34 and
    42: rustc took 380-630 MiB, over their memory budgets)."""
    for number in range(1, launch.MAX_SLOTS):
        build = launch.SLOTS / f"slot-{number}" / "build"
        if not build.is_dir():
            continue
        with open(launch.SLOTS / f"slot-{number}.lock", "w") as lock:
            try:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a kernel runs in it
            shutil.rmtree(build, ignore_errors=True)
            print(f"    emptied build slot {number}: the next kernel there seeds it from slot 0",
                  flush=True)


def main():
    use_this_clones_kernel()
    configurations = module_configurations()
    stamp = launch.SLOTS / "warm.stamp"
    fingerprint = builds_fingerprint(configurations)
    built = (launch.SLOTS / "slot-0" / "build" / "target").is_dir()
    if built and stamp.is_file() and stamp.read_text() == fingerprint:
        print("    the kernel's builds are up to date", flush=True)
        return
    stamp.unlink(missing_ok=True)
    empty_other_free_slots()
    warm("the kernel", "parcours::welcome();")
    for lines, notebooks in configurations.items():
        names = ", ".join(MODULE_DEP.match(line)[1] for line in lines)
        print(f"    building {names} inside the kernel (notebooks {', '.join(notebooks)})...",
              flush=True)
        programs = [PROGRAMS[MODULE_DEP.match(line)[1]] for line in lines
                    if MODULE_DEP.match(line)[1] in PROGRAMS]
        warm(names, "\n".join([*lines, "parcours::welcome();", *programs]))
    stamp.parent.mkdir(parents=True, exist_ok=True)
    stamp.write_text(fingerprint)


if __name__ == "__main__":
    main()
