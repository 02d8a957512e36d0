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
- `exercise`: the code cell the student fills in; it contains `todo!()`;
- `solution`: a markdown cell right after it, the reference solution as a ```rust fence
  inside a collapsed `<details>` block. It is not a code cell, so Run All, or Shift+Enter
  through the notebook, never runs it over the student's code;
- `check`: the code cell that calls the student's code and checks it.
A notebook runs in two modes:
- `solutions`: every code cell in order, each exercise cell replaced by its solution's code;
  every cell must pass;
- `stubs`: every code cell in order, as a student who has written nothing would run them;
  every check must fail on the stub's `todo!()`. Right after each check, each of its wrong
  answers (`tests/wrong_answers/NN-name.md`: answers that skip the technique, see
  `wrong_answers`) runs in place of the exercise, then the check again, which must refuse it;
  then the stub runs again and the notebook goes on.
One kernel may run several passes, each in its own mode (`modes`): the tests run the
solutions, then the stubs, in one kernel, as a class that re-runs a notebook does.

Limits: a cell may run for `CELL_TIMEOUT_SMALL` seconds in small mode (`PARCOURS_SMALL`, as in
the tests) and `CELL_TIMEOUT_FULL` otherwise; a notebook may set its own in its metadata,
`parcours.cell_timeout` (seconds).

Command line:  python tests/nbrun.py [--mode solutions|stubs|both] NOTEBOOK...
(`both`: the solutions, then the stubs, in one kernel, as the tests run them)
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
# The runner starts kernels after `./course setup` has warmed the build slots (a new slot is
# seeded from a built one in seconds): a kernel still not ready after this has hung, and the
# run says so rather than wait. (kernel/warm.py, which compiles on a cold machine, waits longer.)
STARTUP_TIMEOUT = 600
CELL_TIMEOUT_SMALL = 300
CELL_TIMEOUT_FULL = 1800
ANSI = re.compile(r"\x1b\[[0-9;]*m")
# The support crate's displayable types: one of these shown as `Debug` text means that the
# kernel could not call its `evcxr_display` (see the module docstring).
# tests/test_runner.py checks this list against the crate.
COURSE_TYPES = ("BarChart", "Chart", "ChunkedArray", "Comparison", "CpuThroughput", "Dataset", "Diagram",
                "DiskSpeed", "Html", "Image", "Machine", "Plan", "Scaling", "StreamBandwidth", "Table",
                "Timing")
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
    modes: list  # the mode of each pass
    passes: list = field(default_factory=list)  # one list of CellResult per pass
    aborted: str | None = None  # why the run stopped early (a timeout, a dead kernel)
    peak_memory: list = field(default_factory=list)  # bytes (PSS) per pass, see MemoryPeak
    memory_breakdown: dict = field(default_factory=dict)  # at the run's highest sample
    wrong: list = field(default_factory=list)  # (WrongAnswer, its CellResult, the check's)
    wrong_answers_peak: int = 0  # bytes (PSS) while wrong answers and their checks ran
    nb: object = None  # the notebook as executed, outputs in (the last pass's), canary out

    def pass_in(self, mode):
        """The cells of the first pass run in `mode` ([] if it did not start)."""
        number = self.modes.index(mode)
        return self.passes[number] if number < len(self.passes) else []

    def failures(self, roles=None, mode=None):
        return [c for number, cells in enumerate(self.passes) for c in cells
                if c.failed and (roles is None or c.role in roles)
                and (mode is None or self.modes[number] == mode)]

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
        children = process_children()
        parts, stack, names, programs = {}, [(self.root, None)], {}, {}
        while stack:
            pid, parent = stack.pop()
            stack.extend((child, pid) for child in children.get(pid, []))
            try:
                with open(f"/proc/{pid}/comm") as comm:
                    name = comm.read().strip()
                programs[pid] = os.readlink(f"/proc/{pid}/exe")
                # Forked by one of its parent's threads (a tokio worker starting cargo), not
                # yet running its own program: its pages are the parent's, already counted.
                if (programs[pid] == programs.get(parent)
                        and name != os.path.basename(programs[pid])[:15]):
                    continue
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


def process_children():
    """{pid: [its children's pids]} for every process now."""
    children = {}
    for entry in os.scandir("/proc"):
        if entry.name.isdigit():
            try:
                with open(f"/proc/{entry.name}/stat") as stat:
                    parent = int(stat.read().rsplit(")", 1)[1].split()[1])
            except (OSError, IndexError, ValueError):
                continue
            children.setdefault(parent, []).append(int(entry.name))
    return children


def process_tree(root):
    """One line per process under `root`, itself included: its pid, state, the kernel function
    it sleeps in, and its command line."""
    children, lines, stack = process_children(), [], [(root, 0)]
    while stack:
        pid, depth = stack.pop()
        stack.extend((child, depth + 1) for child in children.get(pid, []))
        try:
            with open(f"/proc/{pid}/stat") as stat:
                state = stat.read().rsplit(")", 1)[1].split()[0]
            with open(f"/proc/{pid}/wchan") as wchan:
                waits_in = wchan.read().strip() or "-"
            with open(f"/proc/{pid}/cmdline", "rb") as cmdline:
                command = cmdline.read().replace(b"\0", b" ").decode(errors="replace").strip()
        except OSError:
            continue
        lines.append(f"{'  ' * depth}{pid} {state} {waits_in}: {command[:300]}")
    return "\n".join(lines)


def wait_until_ready(wait, pid):
    """Calls `wait()`, which waits for a kernel to answer (for at most STARTUP_TIMEOUT). If it
    fails, the error says what the kernel's processes were doing just before: a kernel that
    hangs while it starts (a lock, a build) is then found from the log alone."""
    seen = {}
    due = threading.Timer(max(STARTUP_TIMEOUT - 5, 1),
                          lambda: seen.setdefault("tree", process_tree(pid)))
    due.daemon = True
    due.start()
    try:
        return wait()
    except Exception as error:
        raise RuntimeError(
            f"the course kernel did not get ready ({error}; its limit: {STARTUP_TIMEOUT} s); "
            f"its processes then:\n{seen.get('tree') or process_tree(pid) or '(none left)'}") from error
    finally:
        due.cancel()


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


SOLUTION_CODE = re.compile(r"^```rust\n(.*?)^```", re.S | re.M)
WRONG_ANSWERS = Path(__file__).resolve().parent / "wrong_answers"
WRONG_ANSWER = re.compile(r"^## Exercise (\d+): (.+?)\n(.*?)(?=^## |\Z)", re.S | re.M)


def solution_code(cell):
    """The code of a `solution` cell: its one ```rust fence."""
    found = SOLUTION_CODE.findall(cell.source)
    if len(found) != 1:
        raise ValueError(f"a solution cell holds one ```rust fence, not {len(found)}")
    return found[0]


def exercises(nb):
    """The notebook's exercises in order: (exercise index, solution index, check index)."""
    roles = [(i, role(cell)) for i, cell in enumerate(nb.cells) if role(cell)]
    found = []
    for at in range(0, len(roles) - 2, 3):
        (e, er), (s, sr), (c, cr) = roles[at:at + 3]
        if (er, sr, cr) == ("exercise", "solution", "check"):
            found.append((e, s, c))
    return found


@dataclass
class WrongAnswer:
    exercise: int  # 1 for the notebook's first exercise
    name: str  # what it gets wrong
    code: str


def wrong_answers(path):
    """The wrong answers kept for a notebook, from tests/wrong_answers/<notebook's name>.md:
    each `## Exercise N: what it gets wrong` section holds one ```rust fence that the check
    of the notebook's N-th exercise must refuse."""
    source = WRONG_ANSWERS / f"{Path(path).stem}.md"
    if not source.exists():
        return []
    answers = []
    for number, name, body in WRONG_ANSWER.findall(source.read_text()):
        code = SOLUTION_CODE.findall(body)
        if len(code) != 1:
            raise ValueError(f"{source.name}, exercise {number} ({name}): one ```rust fence, "
                             f"not {len(code)}")
        answers.append(WrongAnswer(int(number), name.strip(), code[0]))
    return answers


def cells_for(nb, mode):
    """The code cells run in `mode`: (index, the source to run in its place or None)."""
    solutions = {e: solution_code(nb.cells[s]) for e, s, _ in exercises(nb)}
    return [(i, solutions.get(i) if mode == "solutions" else None)
            for i, cell in enumerate(nb.cells) if cell.cell_type == "code"]


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

    def run(self, cell, index, timeout, source=None):
        """Executes the notebook's cell `index` (its outputs land in it), or `source` in its
        place; returns why it failed, or None. Raises CellTimeoutError or DeadKernelError,
        after which the kernel is unusable."""
        sentinel = f"__parcours_cell_{next(SEQUENCE)}"
        original = cell.source
        if source is not None:
            cell.source = source
        # After the cell's leading commands (`:dep ...`): evcxr reads commands before any code.
        lines = cell.source.split("\n")
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


def execute(path, mode="solutions", passes=1, kernel=KERNEL, on_cell=None, canary=True,
            answers=None, modes=None):
    """Runs a notebook's cells for `mode`, `passes` times over in one kernel, or once in each
    of `modes` in turn. In the first `stubs` pass, `answers` (default: the notebook's file in
    tests/wrong_answers/) are tried after checks."""
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
    modes = list(modes or [mode] * passes)
    run = Run(path, modes)
    cells = {mode: cells_for(nb, mode) for mode in modes}
    if "stubs" not in modes:
        answers = []
    elif answers is None:
        answers = wrong_answers(path)
    # The canary runs as a cell of the notebook (nbclient stores outputs by index).
    nb.cells.append(nbformat.v4.new_code_cell(CANARY))
    canary_index = len(nb.cells) - 1
    client.km = client.create_kernel_manager()
    client.start_new_kernel()
    wait_until_ready(client.start_new_kernel_client, client.km.provisioner.pid)
    with client.setup_kernel():
        runner = Runner(client)
        memory = MemoryPeak(client.km.provisioner.pid)
        try:
            run_passes(run, nb, runner, cells, timeout, canary_index, canary, on_cell, memory,
                       answers)
        finally:
            memory.stop()
            run.memory_breakdown = memory.breakdown
    nb.cells.pop(canary_index)
    run.nb = nb
    return run


def run_cell(run, nb, runner, index, timeout, on_cell, source=None, cell_role=None):
    """Runs one cell (or `source` in its place); returns its CellResult. A timeout or a dead
    kernel sets `run.aborted`: nothing more can run in this kernel."""
    cell = nb.cells[index]
    started = time.monotonic()
    try:
        failure = runner.run(cell, index, timeout, source)
    except CellTimeoutError:
        failure = (f"no result after {timeout} s (the notebook's limit per cell; "
                   f"set metadata parcours.cell_timeout to change it); the run "
                   f"stops here. Last output:\n{all_text(cell)[-1500:]}")
        run.aborted = f"cell {index} timed out"
    except DeadKernelError as error:
        failure = f"the kernel died: {error}\nLast output:\n{all_text(cell)[-1500:]}"
        run.aborted = f"the kernel died in cell {index}"
    result = CellResult(index, cell_role or role(cell), cell.source if source is None else source,
                        time.monotonic() - started, failure)
    if on_cell:
        on_cell(result)
    return result


def run_passes(run, nb, runner, cells, timeout, canary_index, canary, on_cell, memory,
               answers=()):
    """Runs `cells[mode]` once per pass of `run.modes`, each pass followed by the canary; records
    each cell's result and each pass's peak memory in `run`. In the first `stubs` pass, right
    after each exercise's check, its wrong `answers` run (see `try_wrong_answers`)."""
    by_check = wrong_answers_by_check(nb, answers)
    first_stubs = run.modes.index("stubs") if "stubs" in run.modes else None
    for number, mode in enumerate(run.modes):
        results = []
        run.passes.append(results)
        peak = 0  # of the pass's own cells: a student never runs the wrong answers
        for index, source in cells[mode]:
            results.append(run_cell(run, nb, runner, index, timeout, on_cell, source))
            if number == first_stubs and index in by_check and not run.aborted:
                peak = max(peak, memory.take())
                try_wrong_answers(run, nb, runner, index, by_check[index], timeout, on_cell)
                run.wrong_answers_peak = max(run.wrong_answers_peak, memory.take())
            if run.aborted:
                run.peak_memory.append(max(peak, memory.take()))
                return
        run.peak_memory.append(max(peak, memory.take()))
        if canary:
            if runner.run(nb.cells[canary_index], canary_index, timeout) is None:
                results.append(CellResult(-1, "canary", CANARY, 0.0,
                                          f"pass {number + 1}: the runner did not see the "
                                          "canary cell's panic, so it cannot vouch for "
                                          "this run"))


def wrong_answers_by_check(nb, answers):
    """{check cell's index: [(exercise cell's index, wrong answer)...]}"""
    found = exercises(nb)
    by_check = {}
    for answer in answers:
        if not 1 <= answer.exercise <= len(found):
            raise ValueError(f"a wrong answer for exercise {answer.exercise}: the notebook has "
                             f"{len(found)}")
        exercise, _, check = found[answer.exercise - 1]
        by_check.setdefault(check, []).append((exercise, answer))
    return by_check


def try_wrong_answers(run, nb, runner, check, answers, timeout, on_cell):
    """Runs each wrong answer in place of its exercise, then the `check` cell, while the
    notebook's state is as the check left it (later cells may consume it); records (answer,
    the answer's result, the check's result) in `run.wrong`. Then runs the exercise cell
    again, so the rest of the notebook sees the stub as a student would."""
    for exercise, answer in answers:
        ran = run_cell(run, nb, runner, exercise, timeout, on_cell, answer.code, "wrong answer")
        checked = None if run.aborted else run_cell(run, nb, runner, check, timeout, on_cell)
        run.wrong.append((answer, ran, checked))
        if run.aborted:
            return
    run_cell(run, nb, runner, exercise, timeout, on_cell, cell_role="stub again")


def refused(run):
    """Why the wrong answers of a `stubs` run do not prove their checks, one line each, or []."""
    problems = []
    for answer, ran, checked in run.wrong:
        what = f"exercise {answer.exercise}, {answer.name!r}"
        if ran.failed:
            problems.append(f"{what}: the wrong answer itself failed, so it proves nothing:\n"
                            f"{ran.failure.strip()[:800]}")
        elif checked is None:
            problems.append(f"{what}: its check did not run ({run.aborted})")
        elif not checked.failed:
            problems.append(f"{what}: the check accepted it")
        elif "not yet implemented" in checked.failure:
            problems.append(f"{what}: the check failed on a todo!(), not on the wrong answer")
        elif "check failed:" not in checked.failure:
            # A compile error or an unwrap: the check broke instead of judging the answer.
            problems.append(f"{what}: no check refused it; the check cell failed otherwise:\n"
                            f"{checked.failure.strip()[:800]}")
    return problems


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--mode", choices=["solutions", "stubs", "both"], default="solutions")
    args = parser.parse_args()
    use_this_clones_kernel()
    ok = True
    for path in args.notebooks:
        print(f"{path} ({args.mode})", flush=True)
        modes = ["solutions", "stubs"] if args.mode == "both" else [args.mode]
        run = execute(path, modes=modes, on_cell=lambda c: print(
            f"  cell {c.index:3} {c.role or '':9} {c.seconds:6.2f} s  "
            f"{'FAILED' if c.failed else 'ok'}", flush=True))
        print("  peak memory (PSS) per pass: " + ", ".join(
            f"{peak / 2**20:.0f} MiB" for peak in run.peak_memory) + "; at the highest: " + ", ".join(
            f"{name} {size / 2**20:.0f} MiB" for name, size in sorted(
                run.memory_breakdown.items(), key=lambda part: -part[1])), flush=True)
        if run.wrong:
            print(f"  {len(run.wrong)} wrong answers tried; meanwhile the peak was "
                  f"{run.wrong_answers_peak / 2**20:.0f} MiB", flush=True)
        failed = run.failures(mode="solutions")
        if failed:
            ok = False
            print(run.describe(failed))
        if "stubs" in modes:
            passing = [c for c in run.pass_in("stubs") if c.role == "check" and not c.failed]
            canaries = run.failures(roles=("canary",))
            if passing or run.aborted or canaries:
                ok = False
                print("checks that pass without a solution, or a run the runner cannot vouch "
                      f"for ({run.aborted or 'not aborted'}):\n" + run.describe(passing + canaries))
            problems = refused(run)
            for problem in problems:
                ok = False
                print("  wrong answer not refused: " + problem)
            if not problems:
                # Which check said no to each: the author sees that it is the intended one.
                for answer, _, checked in run.wrong:
                    said = re.search(r"check failed: ([^\n]*)", checked.failure)
                    print(f"  exercise {answer.exercise}, {answer.name!r}: refused by "
                          f"{said.group(1)!r}", flush=True)
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
