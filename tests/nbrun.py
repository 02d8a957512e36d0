"""Run the course's notebooks in a real Jupyter client (nbclient) with the course kernel.

The course kernel (evcxr) reports a panicking cell, a failed `assert!` or exercise check
included, as a *success*: the reply status is "ok" and the panic is only text on stderr. So this
runner reads every cell's outputs itself and counts a cell as failed when it has an error output
or shows a panic: the support crate's line on stdout, or Rust's default message on stderr.

Exercises follow one pattern, told by cell tags:
- `exercise`: the stub the student fills in; it contains `todo!()`;
- `solution`: the reference solution, hidden by default (`jupyter.source_hidden`);
- `check`: calls the student's code and checks the result.
A notebook runs in two modes: `solutions` (exercise cells skipped, every cell must pass) and
`stubs` (solution cells skipped, every check cell must fail, so no check passes vacuously).

Command line:  python tests/nbrun.py [--mode solutions|stubs] NOTEBOOK...
"""

import argparse
import re
import sys
import time
from dataclasses import dataclass, field
from pathlib import Path

import nbformat
from nbclient import NotebookClient
from nbclient.exceptions import CellExecutionError, CellTimeoutError, DeadKernelError

KERNEL = "parcours"
ROLES = ("exercise", "solution", "check")
# The support crate's panic hook prints PANIC_MARKER on stdout (see parcours::notebook); the
# default hook's text on stderr can arrive after the cell is over, so it is a second chance.
PANIC_MARKER = "This cell panicked"
PANIC = re.compile(r"panicked at|Child process terminated|Subprocess terminated")
# First start of a kernel on a cold machine compiles the support crate inside it.
STARTUP_TIMEOUT = 1800
CELL_TIMEOUT = 900
ANSI = re.compile(r"\x1b\[[0-9;]*m")


def role(cell):
    """The exercise role of a cell (`exercise`, `solution`, `check`) or None."""
    tags = cell.get("metadata", {}).get("tags", [])
    found = [r for r in ROLES if r in tags]
    return found[0] if found else None


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

    def failures(self, roles=None):
        return [c for cells in self.passes for c in cells
                if c.failed and (roles is None or c.role in roles)]

    def describe(self, cells):
        return "\n".join(
            f"  cell {c.index} ({c.role or 'code'}): {(c.failure or 'passed').strip()[:1500]}\n"
            f"    source: {c.source.strip()[:300]!r}" for c in cells)


def text_of(output):
    if output.get("output_type") == "stream":
        return output.get("text", "")
    if output.get("output_type") == "error":
        return "\n".join([f"{output.get('ename', '')}: {output.get('evalue', '')}",
                          *output.get("traceback", [])])
    return ""


def failure_of(cell):
    """Why an executed cell failed (an error output, or a panic on stderr), or None."""
    for output in cell.get("outputs", []):
        if output.get("output_type") == "error":
            return ANSI.sub("", text_of(output))
        if output.get("output_type") == "stream":
            text = output.get("text", "")
            if PANIC_MARKER in text or (output.get("name") == "stderr" and PANIC.search(text)):
                return ANSI.sub("", "".join(text_of(o) for o in cell["outputs"]))
    return None



def cells_for(nb, mode):
    """The indices of the code cells run in `mode`."""
    skipped = {"solutions": "exercise", "stubs": "solution"}[mode]
    return [i for i, cell in enumerate(nb.cells)
            if cell.cell_type == "code" and role(cell) != skipped]


def execute(path, mode="solutions", passes=1, kernel=KERNEL, on_cell=None):
    """Runs a notebook's cells for `mode`, `passes` times over in one kernel."""
    path = Path(path)
    nb = nbformat.read(path, as_version=4)
    client = NotebookClient(
        nb,
        kernel_name=kernel,
        timeout=CELL_TIMEOUT,
        startup_timeout=STARTUP_TIMEOUT,
        allow_errors=True,
        resources={"metadata": {"path": str(path.parent)}},
    )
    run = Run(path, mode)
    indices = cells_for(nb, mode)
    with client.setup_kernel():
        for _ in range(passes):
            results = []
            for index in indices:
                cell = nb.cells[index]
                cell.outputs = []
                started = time.monotonic()
                try:
                    client.execute_cell(cell, index)
                    failure = failure_of(cell)
                except (CellExecutionError, CellTimeoutError, DeadKernelError) as error:
                    failure = f"{type(error).__name__}: {error}"
                result = CellResult(index, role(cell), cell.source,
                                    time.monotonic() - started, failure)
                results.append(result)
                if on_cell:
                    on_cell(result)
            run.passes.append(results)
    return run


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("notebooks", nargs="+", type=Path)
    parser.add_argument("--mode", choices=["solutions", "stubs"], default="solutions")
    args = parser.parse_args()
    ok = True
    for path in args.notebooks:
        print(f"{path} ({args.mode})", flush=True)
        run = execute(path, args.mode, on_cell=lambda c: print(
            f"  cell {c.index:3} {c.role or '':9} {c.seconds:6.2f} s  "
            f"{'FAILED' if c.failed else 'ok'}", flush=True))
        failed = run.failures()
        if args.mode == "solutions" and failed:
            ok = False
            print(run.describe(failed))
        if args.mode == "stubs":
            passing = [c for c in run.passes[0] if c.role == "check" and not c.failed]
            if passing:
                ok = False
                print("checks that pass without a solution:\n" + run.describe(passing))
    sys.exit(0 if ok else 1)


if __name__ == "__main__":
    main()
