"""Run the course's notebooks in a real Jupyter client (nbclient) with the course kernel.

The course kernel (evcxr) reports a panicking cell, a failed `assert!` or exercise check
included, as a *success*: the reply status is "ok" and there is no error output. Reading the
panic message from the output streams is not reliable either: evcxr forwards the cell's stdout
and stderr from a task of its own, so a line can arrive after the cell is over and be charged
to the next one. So the runner tells a failed cell by two deterministic signals:

1. **The cell's variables.** The runner starts every cell with a statement that declares a
   variable of its own (`let __parcours_cell_N: bool = parcours::notebook::cell_begins();`),
   then asks the kernel for its variables (`:vars`, answered without compiling). When a cell
   panics, or returns an error through `?`, evcxr drops the variables that cell declared: the
   sentinel is missing. This needs no panic hook, so a cell that replaced the hook is still seen.
2. **The panic report.** The support crate's panic hook reports every panic, on any thread, as
   a display output of type `application/vnd.parcours.panic+json` (see parcours::notebook).
   evcxr reads display outputs from the cell's process in order, before the cell's reply.
   `cell_begins` puts the hook back if an earlier cell replaced it.

A compile error is an error output and an "error" reply. A cell that does not finish within
its limit fails the notebook at once: the run stops there and the kernel is killed, so one
hung cell costs its limit, not every later cell's. After each pass a canary cell panics on
purpose; if the runner does not see it, the run fails.

A cell whose only output is the `Debug` text of a course type (`Chart { title: ... }`) fails
too: the kernel falls back to `Debug` when it cannot compile the value's `evcxr_display` call.

Exercises follow one pattern, told by cell tags:
- `exercise`: the stub the student fills in; it contains `todo!()`;
- `solution`: the reference solution, hidden by default (`jupyter.source_hidden`);
- `check`: calls the student's code and checks the result.
A notebook runs in two modes: `solutions` (exercise cells skipped, every cell must pass) and
`stubs` (solution cells skipped, every check cell must fail, so no check passes vacuously).

Limits: a cell may run for `CELL_TIMEOUT_SMALL` seconds in small mode (`PARCOURS_SMALL`, as in
the tests) and `CELL_TIMEOUT_FULL` otherwise; a notebook may set its own in its metadata,
`parcours.cell_timeout` (seconds).

Command line:  python tests/nbrun.py [--mode solutions|stubs] NOTEBOOK...
"""

import argparse
import itertools
import os
import re
import sys
import threading
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellTimeoutError, DeadKernelError
from nbclient.util import run_sync

sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from paths import KERNEL, use_this_clones_kernel  # noqa: E402

ROLES = ("exercise", "solution", "check")
PANIC_MIME = "application/vnd.parcours.panic+json"
PANIC_MARKER = "This cell panicked"
# First start of a kernel on a cold machine compiles the support crate inside it.
STARTUP_TIMEOUT = 1800
CELL_TIMEOUT_SMALL = 300
CELL_TIMEOUT_FULL = 1800
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The support crate's displayable types: one of these shown as `Debug` text means that the
# kernel could not call its `evcxr_display` (see the module docstring).
# tests/test_runner.py checks this list against the crate.
COURSE_TYPES = ("BarChart", "Chart", "Comparison", "CpuThroughput", "DiskSpeed", "Html", "Image",
                "Machine", "Scaling", "StreamBandwidth", "Table", "Timing")
DEBUG_DUMP = re.compile(r"^\s*(?:" + "|".join(COURSE_TYPES) + r")\s*[{(]")
CANARY = 'panic!("canary: the notebook runner must see this panic");'
# One counter per process: sentinel names stay unique across passes and notebooks.
SEQUENCE = itertools.count()


def role(cell):
    """The exercise role of a cell (`exercise`, `solution`, `check`) or None."""
    tags = cell.get("metadata", {}).get("tags", [])
    found = [r for r in ROLES if r in tags]
    return found[0] if found else None


def small():
    value = os.environ.get("PARCOURS_SMALL", "")
    return value not in ("", "0")


def cell_timeout(nb):
    """The notebook's limit per cell, in seconds."""
    declared = nb.metadata.get("parcours", {}).get("cell_timeout")
    if declared is not None:
        return int(declared)
    return CELL_TIMEOUT_SMALL if small() else CELL_TIMEOUT_FULL


@dataclass
class CellResult:
    index: int
    role: str | None
    source: str
    seconds: float
    failure: str | None = None  # why the cell failed, None when it passed

    @property
    def failed(self):
        return self.failure is not None


@dataclass
class Run:
    notebook: Path
    mode: str
    passes: list = field(default_factory=list)  # one list of CellResult per pass
    aborted: str | None = None  # why the run stopped early (a timeout, a dead kernel)
    peak_memory: list = field(default_factory=list)  # bytes (PSS) per pass, see MemoryPeak
    memory_breakdown: dict = field(default_factory=dict)  # at the run's highest sample

    def failures(self, roles=None):
        return [c for cells in self.passes for c in cells
                if c.failed and (roles is None or c.role in roles)]

    def describe(self, cells):
        return "\n".join(
            f"  cell {c.index} ({c.role or 'code'}): {(c.failure or 'passed').strip()[:1500]}\n"
            f"    source: {c.source.strip()[:300]!r}" for c in cells)


class MemoryPeak:
    """The peak memory of a kernel while a notebook runs: the sum of the PSS (proportional set
    size: shared pages counted once over the processes sharing them) of the kernel's launcher
    and every process under it (evcxr, the process that runs the cells, cargo, rustc, the
    linker, what a cell starts), sampled every 0.2 s. A compiler that lives less than that may
    be missed; the budget in each notebook's metadata leaves room for it."""

    PERIOD = 0.2

    def __init__(self, root_pid):
        self.root = root_pid
        self.peak = 0
        self.breakdown = {}  # at the highest sample so far: {process name: bytes}
        self.stopped = threading.Event()
        self.thread = threading.Thread(target=self._sample, daemon=True)
        self.thread.start()

    def take(self):
        """The peak since the last call."""
        peak, self.peak = self.peak, 0
        return max(peak, self.total())

    def stop(self):
        self.stopped.set()
        self.thread.join(timeout=5)

    def _sample(self):
        while not self.stopped.wait(self.PERIOD):
            self.peak = max(self.peak, self.total())

    def total(self):
        """The PSS of the process tree now, in bytes."""
        parts = self.parts()
        total = sum(parts.values())
        if total > sum(self.breakdown.values()):
            self.breakdown = parts
        return total

    def parts(self):
        children = {}
        for entry in os.scandir("/proc"):
            if entry.name.isdigit():
                try:
                    with open(f"/proc/{entry.name}/stat") as stat:
                        parent = int(stat.read().rsplit(")", 1)[1].split()[1])
                except (OSError, IndexError, ValueError):
                    continue
                children.setdefault(parent, []).append(int(entry.name))
        parts, stack, names = {}, [self.root], {}
        while stack:
            pid = stack.pop()
            stack.extend(children.get(pid, []))
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    name = comm.read().strip()
                # evcxr runs the cells in a child process of its own binary.
                if name == "evcxr_jupyter" and "evcxr_jupyter" in names.values():
                    name = "evcxr_jupyter (the cells)"
                names[pid] = name
                with open(f"/proc/{pid}/smaps_rollup") as rollup:
                    pss = next(int(line.split()[1]) * 1024 for line in rollup
                               if line.startswith("Pss:"))
                parts[name] = parts.get(name, 0) + pss
            except (OSError, StopIteration, ValueError):
                pass  # gone meanwhile, or a zombie
        return parts


def memory_budget(nb):
    """The notebook's memory budget for one pass, in bytes (metadata parcours.memory_mib)."""
    budget = nb.metadata.get("parcours", {}).get("memory_mib")
    return None if budget is None else int(budget) * 2**20


def text_of(output):
    kind = output.get("output_type")
    if kind == "stream":
        return output.get("text", "")
    if kind == "error":
        return "\n".join([f"{output.get('ename', '')}: {output.get('evalue', '')}",
                          *output.get("traceback", [])])
    if kind in ("execute_result", "display_data"):
        return output.get("data", {}).get("text/plain", "")
    return ""


def all_text(cell):
    return ANSI.sub("", "".join(text_of(o) for o in cell.get("outputs", [])))


def failure_of(cell):
    """Why an executed cell failed, read from its outputs (not its streams), or None."""
    for output in cell.get("outputs", []):
        kind = output.get("output_type")
        if kind == "error":
            return ANSI.sub("", text_of(output))
        if kind in ("execute_result", "display_data"):
            data = output.get("data", {})
            if PANIC_MIME in data:
                return all_text(cell) or f"panicked: {data[PANIC_MIME]}"
            plain = data.get("text/plain", "")
            if set(data) == {"text/plain"} and DEBUG_DUMP.match(ANSI.sub("", plain)):
                return ("the cell shows the Debug text of a course type, not its display (the "
                        "kernel could not compile its evcxr_display call; often the last "
                        "expression moves a variable the cell declared):\n" + plain[:300])
    return None


def cells_for(nb, mode):
    """The indices of the code cells run in `mode`."""
    skipped = {"solutions": "exercise", "stubs": "solution"}[mode]
    return [i for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and role(cell) != skipped]


class Runner:
    """Runs cells in one kernel and tells, deterministically, which of them failed."""

    def __init__(self, client):
        self.client = client
        self.reply = None
        client.on_cell_executed = self._keep_reply

    def _keep_reply(self, cell, cell_index, execute_reply):
        self.reply = execute_reply

    def variables(self):
        """The names of the kernel's variables (`:vars`, answered without compiling)."""
        results = []

        def keep(msg):
            if msg["msg_type"] == "execute_result":
                results.append(msg["content"]["data"].get("text/plain", ""))

        run_sync(self.client.kc.execute_interactive)(
            ":vars", store_history=False, timeout=60, output_hook=keep)
        return {line.split(":", 1)[0].strip() for text in results for line in text.splitlines()}

    def run(self, cell, index, timeout):
        """Executes the notebook's cell `index` (its outputs land in it); returns why it
        failed, or None. Raises CellTimeoutError or DeadKernelError, after which the kernel
        is unusable."""
        sentinel = f"__parcours_cell_{next(SEQUENCE)}"
        original = cell.source
        # After the cell's leading commands (`:dep ...`): evcxr reads commands before any code.
        lines = original.split("\n")
        commands = 0
        while commands < len(lines) and lines[commands].startswith(":"):
            commands += 1
        cell.source = "\n".join(
            lines[:commands] + [f"let {sentinel}: bool = parcours::notebook::cell_begins();"]
            + lines[commands:])
        cell.outputs = []
        self.reply = None
        self.client.timeout = timeout
        try:
            self.client.execute_cell(cell, index)
        finally:
            cell.source = original
        failure = failure_of(cell)
        if failure is None and (self.reply or {}).get("content", {}).get("status") == "error":
            failure = all_text(cell) or "the kernel replied with an error"
        if failure is None and sentinel not in self.variables():
            failure = ("the cell did not finish (a panic, or an error returned with `?`): the "
                       "kernel dropped the variables it declared\n" + all_text(cell)).strip()
        return failure


def execute(path, mode="solutions", passes=1, kernel=KERNEL, on_cell=None, canary=True):
    """Runs a notebook's cells for `mode`, `passes` times over in one kernel."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    timeout = cell_timeout(nb)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=timeout,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=True,
        interrupt_on_timeout=False,
        # After a timeout the kernel is still busy: kill it rather than ask it to stop.
        shutdown_kernel="immediate",
        resources={"metadata": {"path": str(path.parent)}},
    )
    run = Run(path, mode)
    indices = cells_for(nb, mode)
    # The canary runs as a cell of the notebook (nbclient stores outputs by index).
    nb.cells.append(nbformat.v4.new_code_cell(CANARY))
    canary_index = len(nb.cells) - 1
    with client.setup_kernel():
        runner = Runner(client)
        memory = MemoryPeak(client.km.provisioner.pid)
        try:
            run_passes(run, nb, runner, indices, passes, timeout, canary_index, canary, on_cell,
                       memory)
        finally:
            memory.stop()
            run.memory_breakdown = memory.breakdown
    return run


def run_passes(run, nb, runner, indices, passes, timeout, canary_index, canary, on_cell, memory):
    """Runs the cells `passes` times over, each pass followed by the canary; records each
    cell's result and each pass's peak memory in `run`."""
    for number in range(passes):
        results = []
        run.passes.append(results)
        for index in indices:
            cell = nb.cells[index]
            started = time.monotonic()
            try:
                failure = runner.run(cell, index, timeout)
            except CellTimeoutError:
                failure = (f"no result after {timeout} s (the notebook's limit per cell; "
                           f"set metadata parcours.cell_timeout to change it); the run "
                           f"stops here. Last output:\n{all_text(cell)[-1500:]}")
                run.aborted = f"cell {index} timed out"
            except DeadKernelError as error:
                failure = f"the kernel died: {error}\nLast output:\n{all_text(cell)[-1500:]}"
                run.aborted = f"the kernel died in cell {index}"
            result = CellResult(index, role(cell), cell.source,
                                time.monotonic() - started, failure)
            results.append(result)
            if on_cell:
                on_cell(result)
            if run.aborted:
                run.peak_memory.append(memory.take())
                return
        run.peak_memory.append(memory.take())
        if canary:
            if runner.run(nb.cells[canary_index], canary_index, timeout) is None:
                results.append(CellResult(-1, "canary", CANARY, 0.0,
                                          f"pass {number + 1}: the runner did not see the "
                                          "canary cell's panic, so it cannot vouch for "
                                          "this run"))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--mode", choices=["solutions", "stubs"], default="solutions")
    args = parser.parse_args()
    use_this_clones_kernel()
    ok = True
    for path in args.notebooks:
        print(f"{path} ({args.mode})", flush=True)
        run = execute(path, args.mode, on_cell=lambda c: print(
            f"  cell {c.index:3} {c.role or '':9} {c.seconds:6.2f} s  "
            f"{'FAILED' if c.failed else 'ok'}", flush=True))
        print("  peak memory (PSS) per pass: " + ", ".join(
            f"{peak / 2**20:.0f} MiB" for peak in run.peak_memory) + "; at the highest: " + ", ".join(
            f"{name} {size / 2**20:.0f} MiB" for name, size in sorted(
                run.memory_breakdown.items(), key=lambda part: -part[1])), flush=True)
        failed = run.failures()
        if args.mode == "solutions" and failed:
            ok = False
            print(run.describe(failed))
        if args.mode == "stubs":
            passing = [c for c in run.passes[0] if c.role == "check" and not c.failed]
            canaries = run.failures(roles=("canary",))
            if passing or run.aborted or canaries:
                ok = False
                print("checks that pass without a solution, or a run the runner cannot vouch "
                      f"for ({run.aborted or 'not aborted'}):\n" + run.describe(passing + canaries))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
