"""The notebooks with their solutions in place and executed, for instructors: each exercise
cell holds the reference solution (its collapsed Solution block is dropped), and every cell
its outputs from one run in a fresh course kernel (small mode unless PARCOURS_SMALL=0).

    ./course solutions [--out DIR] [NOTEBOOK...]     (default: every notebook, into
                                                     $PARCOURS_HOME/solutions)
"""

import argparse
import os
import sys
import tempfile
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from nbrun import exercises, execute, solution_code  # noqa: E402
from paths import REPO, parcours_home, use_this_clones_kernel  # noqa: E402


def with_solutions(nb):
    """A copy of `nb` whose exercise cells hold their solutions; the indices of the Solution
    blocks, which the runner still reads and the written notebook leaves out."""
    nb = nbformat.from_dict(nb)
    solution_cells = set()
    for exercise, solution, _check in exercises(nb):
        nb.cells[exercise].source = solution_code(nb.cells[solution]).rstrip("\n")
        solution_cells.add(solution)
    return nb, solution_cells


def write_solutions(notebook, out):
    """Executes `notebook` with its solutions; writes it into `out`; returns the failed cells."""
    nb, solution_cells = with_solutions(nbformat.read(notebook, as_version=4))
    # Executed beside the original, so that relative paths (../support-crate, data/) hold.
    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", dir=notebook.parent,
                                     prefix=f".solutions-{notebook.stem}-", delete=False) as tmp:
        nbformat.write(nb, tmp)
    try:
        run = execute(tmp.name, "solutions")
    finally:
        os.unlink(tmp.name)
    run.nb.cells = [cell for index, cell in enumerate(run.nb.cells) if index not in solution_cells]
    out.mkdir(parents=True, exist_ok=True)
    nbformat.write(run.nb, out / notebook.name)
    return run.failures() + ([run.aborted] if run.aborted else [])


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--out", type=Path, default=parcours_home() / "solutions",
                        help="where to write them (default $PARCOURS_HOME/solutions)")
    parser.add_argument("notebooks", nargs="*", type=Path, help="default: every notebook")
    args = parser.parse_args()
    os.environ.setdefault("PARCOURS_SMALL", "1")
    use_this_clones_kernel()
    notebooks = [n.resolve() for n in args.notebooks] or sorted(
        (REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
    failed = []
    for notebook in notebooks:
        print(f"{notebook.name}...", flush=True)
        problems = write_solutions(notebook, args.out)
        if problems:
            failed.append(notebook.name)
            print(f"  {len(problems)} cell(s) failed: see the notebook's outputs", flush=True)
    print(f"wrote {len(notebooks) - len(failed)} notebook(s) with solutions into {args.out}")
    if failed:
        sys.exit(f"cells failed in: {', '.join(failed)}")


if __name__ == "__main__":
    main()
