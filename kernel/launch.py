#!/usr/bin/env python3
"""Start the course kernel: evcxr_jupyter with the support crate `parcours` preloaded.

Jupyter runs this script (see kernel.json) with a connection file. It
1. takes a free *build slot*: a build directory that only this kernel uses while it runs
   (evcxr allows one kernel per build directory). A new slot starts as a copy of a built one,
   so compiled dependencies are reused: by restarts, and by two notebooks open at once;
2. writes evcxr's start-up script into the slot: `:dep` on the support crate and, under their
   own names, on the libraries it re-exports (one copy still: they link from its dylib), then
   `use parcours::prelude::*;` and `parcours::notebook::init();` (a clear message for panics);
   and makes the slot a cargo workspace that holds the course's Cargo.lock (pin_versions);
3. runs evcxr_jupyter and stays its parent: it forwards signals, and if evcxr dies while
   starting (the support crate does not build), it starts evcxr again with a placeholder
   crate whose `parcours::welcome()` shows the build error in the notebook, instead of letting
   Jupyter restart a kernel that can never start. The start-up script's last line leaves a
   file in the slot: an evcxr that dies after it had started crashed mid-session, and the
   launcher says so (Jupyter then restarts the kernel; variables are lost) instead.

Without `rustc` and `cargo` on PATH, or without evcxr_jupyter, nothing Rust can start: the
launcher then runs a small Python kernel that answers every cell with what is missing and
what to do, so that the notebook says it instead of restarting a dead kernel in a loop.

Environment: PARCOURS_HOME (caches, see paths.py), PARCOURS_EVCXR (the
evcxr_jupyter binary), PARCOURS_SUPPORT_CRATE (the crate to preload; tests point it elsewhere).
docs/kernel.md explains the choices and their measurements.
"""

import ctypes
import fcntl
import hashlib
import os
import re
import shutil
import signal
import subprocess
import sys
import threading
import time
from pathlib import Path

from paths import REPO, locked_versions, parcours_home

HOME = parcours_home()
EVCXR = os.environ.get("PARCOURS_EVCXR") or str(HOME / "tools" / "bin" / "evcxr_jupyter")
# The crate every notebook preloads: the course's toolbox. Each module's crate, beside it, is
# loaded by the module's first cell (docs/architecture.md).
SUPPORT_CRATE = Path(os.environ.get("PARCOURS_SUPPORT_CRATE") or REPO / "support-crate" / "toolbox")
# Slots are kept per toolbox folder: cargo names a dylib without a hash
# (libparcours.so), so two clones of the course building in one folder would overwrite each
# other's library while each still looks up to date to cargo.
SLOTS = HOME / "kernels" / (
    f"{SUPPORT_CRATE.parent.name}-{hashlib.sha256(str(SUPPORT_CRATE).encode()).hexdigest()[:12]}")
MAX_SLOTS = 16
PR_SET_PDEATHSIG = 1
ORPHAN_POLL_SECONDS = 2
# The display output that reports a panic to the notebook runner (parcours::notebook).
PANIC_MIME = "application/vnd.parcours.panic+json"


def log(message):
    print(f"[parcours kernel] {message}", file=sys.stderr, flush=True)


def prune_slots_of_deleted_clones():
    """Removes the slots of support-crate folders that no longer exist (deleted clones)."""
    for slots in (HOME / "kernels").glob("*/"):
        owner = slots / "support-crate-path"
        if slots == SLOTS or not owner.is_file():
            continue
        crate = owner.read_text()
        if (Path(crate) / "Cargo.toml").is_file():
            continue
        locks = [open(lock, "w") for lock in slots.glob("slot-*.lock")]
        try:
            for lock in locks:
                fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            continue  # a kernel of that clone still runs
        finally:
            for lock in locks:
                lock.close()
        shutil.rmtree(slots, ignore_errors=True)
        log(f"removed the build slots of {crate}, which no longer exists")


def take_slot():
    """Locks the first free slot; returns its directory and the open lock (held until exit)."""
    SLOTS.mkdir(parents=True, exist_ok=True)
    (SLOTS / "support-crate-path").write_text(str(SUPPORT_CRATE))
    for number in range(MAX_SLOTS):
        lock = open(SLOTS / f"slot-{number}.lock", "w")
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            lock.close()
            continue
        slot = SLOTS / f"slot-{number}"
        build = slot / "build"
        if not (build / "target").is_dir():
            seed_from_built_slot(build)
        return slot, lock
    sys.exit(f"parcours kernel: all {MAX_SLOTS} build slots in {SLOTS} are in use; close a notebook")


def seed_from_built_slot(build):
    """Copies the compiled dependencies of a built slot, so this one starts warm: one of this
    clone's if there is one, else another clone's (cargo rebuilds the support crate alone)."""
    ours = [SLOTS / f"slot-{number}" / "build" / "target" for number in range(MAX_SLOTS)]
    others = sorted((HOME / "kernels").glob("*/slot-*/build/target"))
    for source in ours + others:
        if source.is_dir() and source.parent != build:
            shutil.rmtree(build, ignore_errors=True)
            build.mkdir(parents=True)
            started = time.monotonic()
            try:
                # Not the path crates' incremental caches: up-to-date crates never read them.
                shutil.copytree(source, build / "target", symlinks=True,
                                copy_function=link_or_copy,
                                ignore=shutil.ignore_patterns("incremental"))
            except (OSError, shutil.Error) as error:
                # Disk full, say: start cold rather than not at all.
                shutil.rmtree(build / "target", ignore_errors=True)
                log(f"could not copy {source} ({error}); this slot compiles from scratch")
                return
            log(f"new build slot {build.parent} seeded from {source.parent.parent} "
                f"in {time.monotonic() - started:.1f} s")
            return
    build.mkdir(parents=True, exist_ok=True)
    log(f"first build slot {build.parent.name}: the support crate compiles once, then is reused")


# A compiled library named with its build's hash (a registry crate's, a compiler plug-in's):
# rustc and the linker replace such a file (a new file, renamed), never rewrite it in place,
# so slots may share it.
HASHED_LIBRARY = re.compile(r"^lib.+-[0-9a-f]{16}\.(rlib|rmeta|so)$")


def link_or_copy(source, destination):
    """Hard-links the compiled libraries of a slot's `deps` folders (nearly all of its size),
    copies the rest: cargo rewrites its fingerprints in place, and cells' libraries are relinked."""
    source = Path(source)
    if source.parent.name == "deps" and HASHED_LIBRARY.match(source.name):
        try:
            os.link(source, destination)
            return destination
        except FileNotFoundError:
            return destination
        except OSError:
            pass  # another file system: copy
    try:
        return shutil.copy2(source, destination)
    except FileNotFoundError:
        # Gone since the folder was listed: a cell's library that the kernel running in the
        # source slot replaced. Cargo rebuilds whatever a copy lacks.
        return destination


def quoted(value):
    """A double-quoted string with its escapes, as both TOML and Rust read it."""
    return '"' + str(value).replace("\\", "\\\\").replace('"', '\\"') + '"'


def started_marker(slot):
    """The file the start-up script writes once evcxr has built and loaded the support crate."""
    return slot / "started"


def reexported_crates(crate):
    """The libraries a support crate re-exports whole (`pub use rayon;` in its lib.rs)."""
    lib = Path(crate) / "src" / "lib.rs"
    text = lib.read_text() if lib.is_file() else ""
    return re.findall(r"^pub use ([a-z][a-z0-9_]*);$", text, re.MULTILINE)


def module_crates(crate):
    """The course modules' crates beside the toolbox: {package name: folder}."""
    crates = {}
    for manifest in sorted(Path(crate).parent.glob("*/Cargo.toml")):
        text = manifest.read_text()
        found = re.search(r'^name = "(parcours-[a-z0-9-]+)"$', text, re.MULTILINE)
        if found and '"dylib"' in text and manifest.parent != Path(crate):
            crates[found[1]] = manifest.parent
    return crates


# Re-exported libraries whose derive macros refer to them as a crate of the cell's.
NAMED_BY_THEIR_MACROS = {"serde"}
# The data engines' libraries (Module 4), compiled at -O1 in the kernel: see pin_versions.
ENGINE = re.compile(r"^(polars|datafusion|arrow|parquet|ballista)(-|$)")


def find_lock(crate):
    """The Cargo.lock of the workspace the toolbox belongs to (cargo looks for it upwards, as
    for the workspace), or None."""
    for folder in (Path(crate), *Path(crate).parents):
        if (folder / "Cargo.lock").is_file():
            return folder / "Cargo.lock"
    return None


def write_config(slot, crate, package="parcours"):
    """Writes evcxr's start-up script, and the workspace that pins the kernel's versions."""
    config = slot / "config"
    config.mkdir(parents=True, exist_ok=True)
    started_marker(slot).unlink(missing_ok=True)
    versions = pin_versions(slot, crate, package)
    # The re-exported libraries under their own names, so that code pasted from elsewhere
    # (`rayon::join`, `use crossbeam::channel;`, `#[derive(serde::Serialize)]`) compiles. A
    # `use` makes the name (rustc resolves paths from names in scope, imports included); a
    # library whose derive macros name it as a crate (`extern crate serde as _serde`) needs a
    # `:dep`: the same package in the same build as the toolbox's, so rustc links it from the
    # toolbox's dylib, still one copy per kernel. Each `:dep` costs a `cargo metadata`.
    names = reexported_crates(crate)
    dependencies = "".join(
        f":dep {name} = {{ version = {quoted('=' + versions[name])}, default-features = false }}\n"
        for name in names if name in NAMED_BY_THEIR_MACROS and name in versions)
    imports = "".join(f"use parcours::{name};\n"
                      for name in names if name not in NAMED_BY_THEIR_MACROS)
    (config / "init.evcxr").write_text(
        f":dep parcours = {{ path = {quoted(crate)}, package = {quoted(package)} }}\n"
        + dependencies + imports +
        "use parcours::prelude::*;\n"
        "parcours::notebook::init();\n"
        f"std::fs::write({quoted(started_marker(slot))}, \"\").ok();\n"
    )
    # evcxr reads evcxr.toml before init.evcxr; one left by an older set-up would win.
    (config / "evcxr.toml").unlink(missing_ok=True)
    (config / "prelude.rs").unlink(missing_ok=True)
    return config


def pin_versions(slot, crate, package):
    """Makes the slot a cargo workspace whose lock is the course's Cargo.lock; returns the
    locked versions.

    evcxr checks each `:dep` by resolving a one-dependency package in its build folder, which
    rewrites Cargo.lock without the other dependencies' packages; the next full resolution then
    takes the newest versions on crates.io, not the ones `cargo test` built. A second member
    that depends on the toolbox and on every module's crate keeps their whole graph in every
    resolution, so every locked version holds. Profiles are read from a workspace's root
    only: the root carries the one evcxr writes for its cells (evcxr 0.22, `:opt 2`).
    """
    lock = find_lock(crate)
    (slot / "Cargo.toml").write_text(
        "# Written by the course kernel's launcher (kernel/launch.py): see pin_versions.\n"
        '[workspace]\nmembers = ["build", "pins"]\nexclude = ["placeholder"]\nresolver = "3"\n\n'
        + cells_profile(lock))
    pins = slot / "pins"
    (pins / "src").mkdir(parents=True, exist_ok=True)
    (pins / "src" / "lib.rs").write_text("")
    # The modules' crates under a target that never matches: cargo still resolves and locks
    # them (a lock holds every platform's packages), so a module's first cell finds its
    # versions pinned; rust-analyzer, which evcxr runs on this workspace for the host target
    # only, does not load them until a cell does (its memory, and the first `let`'s wait).
    modules = "".join(f"{name} = {{ path = {quoted(folder)} }}\n"
                      for name, folder in module_crates(crate).items())
    (pins / "Cargo.toml").write_text(
        '[package]\nname = "parcours-kernel-pins"\nversion = "0.0.0"\nedition = "2024"\n'
        "publish = false\n\n[dependencies]\n"
        f"parcours = {{ path = {quoted(crate)}, package = {quoted(package)} }}\n"
        + (f"\n[target.'cfg(any())'.dependencies]\n{modules}" if modules else ""))
    if lock is None:
        return {}
    if lock.resolve() != (slot / "Cargo.lock").resolve():
        shutil.copyfile(lock, slot / "Cargo.lock")
    return locked_versions(lock)


def cells_profile(lock):
    """The profile the kernel builds with: evcxr's for its cells (`:opt 2`), and for the data
    engines' crates `-O1`: they are most of a cold set-up's compile time (polars about 14 min
    and DataFusion with Ballista about 25 on 2 cores at -O2), and a notebook's small tables do
    not need the last -O2 gains (docs/kernel.md, "Build slots"). A cell's own crate (`ctx`)
    keeps evcxr's 16 codegen units: with one, a cell declaring a variable took 0.54-0.69 s
    against 0.37-0.45 s. Also read by tests/kernel_only_crates.py, which tests crates against
    the kernel's build."""
    engines = sorted(name for name in (locked_versions(lock) if lock else {}) if ENGINE.match(name))
    return ("[profile.dev]\nopt-level = 2\ndebug = false\nstrip = \"debuginfo\"\nrpath = true\n"
            "lto = false\ndebug-assertions = true\ncodegen-units = 16\npanic = \"unwind\"\n"
            "incremental = true\noverflow-checks = true\n"
            # SQLite's C source (Module 4's task queues) compiles 3x faster at -O1 than -O3.
            "\n[profile.dev.package.libsqlite3-sys]\nopt-level = 1\n"
            + "".join(f'\n[profile.dev.package."{name}"]\nopt-level = 1\n' for name in engines))


def write_placeholder_crate(slot, error):
    """A crate used as `parcours` whose welcome() shows why the real one did not load."""
    crate = slot / "placeholder"
    (crate / "src").mkdir(parents=True, exist_ok=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "parcours-placeholder"\nversion = "0.0.0"\nedition = "2021"\n\n'
        '[lib]\ncrate-type = ["rlib", "dylib"]\n'
    )
    message = (
        "The course kernel could not start with its support crate, so it runs without it.\n"
        "Most often the course support crate failed to build; evcxr_jupyter stopped with:\n\n"
        f"{error.strip()}\n\n"
        f"Crate: {SUPPORT_CRATE}\n"
        "For the compiler's full message, run `cargo build -p parcours` in the course folder.\n"
        "Fix the error (or run `./course setup` to rebuild), then restart the kernel."
    )
    (crate / "src" / "lib.rs").write_text(
        "//! Stands in for the support crate when it does not build; see `welcome`.\n"
        "pub mod prelude {}\n"
        "pub mod notebook { pub fn init() {} pub fn cell_begins() -> bool { false } }\n"
        f"pub const BUILD_ERROR: &str = {rust_raw_string(message)};\n"
        # The message as the cell's result, and the panic report the notebook runner reads
        # (see parcours::notebook): both arrive with the cell, unlike a panic's stderr.
        "pub fn welcome() {\n"
        "    println!(\"EVCXR_BEGIN_CONTENT text/plain\\n{BUILD_ERROR}\\nEVCXR_END_CONTENT\");\n"
        f"    println!(\"EVCXR_BEGIN_CONTENT {PANIC_MIME}\\n{{{{}}}}\\nEVCXR_END_CONTENT\");\n"
        "    panic!(\"the course support crate is missing: see the message above\");\n}\n"
    )
    return crate


def rust_raw_string(text):
    hashes = "#"
    while f'"{hashes}' in text:
        hashes += "#"
    return f'r{hashes}"{text}"{hashes}'


class Evcxr:
    """evcxr_jupyter as a child: its stderr passes through, and its tail is kept."""

    def __init__(self, connection_file, slot, config):
        env = dict(os.environ)
        env["EVCXR_TMPDIR"] = str(slot / "build")
        env["EVCXR_CONFIG_DIR"] = str(config)
        # evcxr runs cargo in its own build directory and expects the output there.
        env.pop("CARGO_TARGET_DIR", None)
        # Cells link Rust's standard library dynamically (that is what lets the support crate be
        # a dylib); the loader finds it in the toolchain's lib folder.
        env["LD_LIBRARY_PATH"] = os.pathsep.join(
            p for p in (rust_target_libdir(), env.get("LD_LIBRARY_PATH")) if p)
        # Mesa's Vulkan drivers print an error in every GPU cell when this is unset (containers,
        # Binder): give them a private one.
        if not os.path.isdir(env.get("XDG_RUNTIME_DIR", "")):
            runtime = HOME / "runtime"
            runtime.mkdir(mode=0o700, parents=True, exist_ok=True)
            env["XDG_RUNTIME_DIR"] = str(runtime)
        self.stderr_tail = []
        self.process = subprocess.Popen(
            [EVCXR, "--control_file", connection_file],
            env=env,
            stderr=subprocess.PIPE,
            preexec_fn=die_with_parent,
        )
        self.reader = threading.Thread(target=self._pass_stderr, daemon=True)
        self.reader.start()

    def _pass_stderr(self):
        for raw in self.process.stderr:
            line = raw.decode(errors="replace")
            sys.stderr.write(line)
            sys.stderr.flush()
            self.stderr_tail = (self.stderr_tail + [line])[-200:]

    def wait(self):
        code = self.process.wait()
        self.reader.join(timeout=5)
        return code


def startup_error(stderr_lines):
    """The compiler's message in evcxr's last words: no progress lines, no backtrace."""
    lines = []
    for line in stderr_lines:
        if line.startswith("Stack backtrace:"):
            break
        if not line.lstrip().startswith(("Compiling ", "[parcours kernel]")):
            lines.append(line)
    return "".join(lines[-60:]).strip()


def rust_target_libdir():
    return subprocess.run(["rustc", "--print", "target-libdir"], capture_output=True, text=True,
                          check=True).stdout.strip()


def die_with_parent():
    """In the child: be killed if this launcher dies, so no evcxr outlives its kernel."""
    libc = ctypes.CDLL(None, use_errno=True)
    libc.prctl(PR_SET_PDEATHSIG, signal.SIGKILL)


def missing_tools():
    """What the course kernel needs and cannot find, as a message; None when all is there."""
    missing = [tool for tool in ("rustc", "cargo") if shutil.which(tool) is None]
    if missing:
        return (f"The course kernel needs Rust, and {' and '.join(missing)} cannot be found on "
                f"the PATH of this kernel:\n  PATH={os.environ.get('PATH', '')}\n"
                "Install Rust with rustup (https://rustup.rs), or make its folder "
                "(usually ~/.cargo/bin) part of the PATH of the shell that starts JupyterLab, "
                "then restart JupyterLab (./course open).")
    if not (os.path.isfile(EVCXR) and os.access(EVCXR, os.X_OK)):
        return (f"The course kernel evcxr_jupyter is not installed (looked for {EVCXR}).\n"
                "Run ./course setup in the course folder, then restart the kernel.")
    return None


def serve_message(connection_file, message):
    """Runs a Python kernel that answers every cell with `message` as an error."""
    from ipykernel.kernelapp import IPKernelApp
    from ipykernel.kernelbase import Kernel

    class MessageKernel(Kernel):
        implementation = "parcours-message"
        implementation_version = "1"
        language_info = {"name": "rust", "mimetype": "text/rust", "file_extension": ".rs"}
        banner = message

        def do_execute(self, code, silent, store_history=True, user_expressions=None,
                       allow_stdin=False, *, cell_meta=None, cell_id=None):
            self.send_response(self.iopub_socket, "stream",
                               {"name": "stderr", "text": message + "\n"})
            return {"status": "error", "execution_count": self.execution_count,
                    "ename": "CourseKernelUnavailable", "evalue": message, "traceback": []}

    log(message)
    IPKernelApp.launch_instance(kernel_class=MessageKernel, argv=["-f", connection_file])


def stop_when_orphaned(current):
    """Stops the kernel when the Jupyter server that started it is gone.

    A server killed without cleaning up (SIGKILL, a crash) leaves its kernels running: the
    launcher is then adopted by another process. Its evcxr dies with it (die_with_parent).
    """
    parent = os.getppid()
    while True:
        time.sleep(ORPHAN_POLL_SECONDS)
        if os.getppid() != parent:
            log(f"the Jupyter server that started this kernel (pid {parent}) is gone: stopping")
            evcxr = current()
            if evcxr and evcxr.process.poll() is None:
                evcxr.process.terminate()
            os._exit(0)


def main():
    if len(sys.argv) != 2:
        sys.exit("usage: launch.py CONNECTION_FILE")
    connection_file = sys.argv[1]
    message = missing_tools()
    if message:
        serve_message(connection_file, message)
        return
    # Deleted clones' slots first, so that a new slot is not seeded from one of them.
    prune_slots_of_deleted_clones()
    slot, _lock = take_slot()
    config = write_config(slot, SUPPORT_CRATE)
    log(f"build slot {slot}")

    current = None

    def forward(signum, _frame):
        if current and current.process.poll() is None:
            current.process.send_signal(signum)
        if signum == signal.SIGTERM:
            sys.exit(128 + signum)

    for signum in (signal.SIGTERM, signal.SIGINT, signal.SIGHUP):
        signal.signal(signum, forward)
    threading.Thread(target=stop_when_orphaned, args=(lambda: current,), daemon=True).start()

    started = time.monotonic()
    current = Evcxr(connection_file, slot, config)
    code = current.wait()
    stopped = code in (0, -signal.SIGTERM, -signal.SIGKILL, -signal.SIGINT)
    if not stopped and started_marker(slot).exists():
        log(f"evcxr_jupyter stopped unexpectedly (status {code}) after "
            f"{time.monotonic() - started:.0f} s, in the middle of the session. The notebook's "
            "variables are lost; Jupyter starts the kernel again. Its last words are above.")
    elif not stopped:
        error = startup_error(current.stderr_tail) or f"evcxr_jupyter exited with status {code}"
        log(f"evcxr_jupyter exited with status {code} after {time.monotonic() - started:.0f} s; "
            "starting it again without the support crate, so that notebooks can say why")
        placeholder = write_placeholder_crate(slot, error)
        # Its own package name, so its libparcours_placeholder.so leaves libparcours.so alone.
        config = write_config(slot, placeholder, package="parcours-placeholder")
        current = Evcxr(connection_file, slot, config)
        code = current.wait()
    sys.exit(code if code >= 0 else 128 - code)


if __name__ == "__main__":
    main()
