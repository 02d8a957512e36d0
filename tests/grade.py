"""Grade a class: each student's notebooks, run in a fresh course kernel with the course's own
checks, into a report (an HTML table, students × exercises, and a CSV).

    ./course grade SUBMISSIONS [--out DIR] [--notebook-timeout S] [--cell-timeout S]
    ./course progress [NOTEBOOK...]       your own notebooks (your workspace's, see
                                          kernel/workspace.py): which exercises pass

SUBMISSIONS holds a folder per student, each with the notebooks they hand in, named as the
course's (`alice/22-threads-in-practice.ipynb`), or with their whole workspace
(`alice/notebooks/22-threads-in-practice.ipynb`). Only the students' *exercise* cells are taken
(in order, by their `exercise` tag); every other cell, the checks first, comes from the course's
notebook, so that a submission cannot change what is checked, print a `✔` of its own, or replace
the panic hook. Each check's verdict is read through the runner's deterministic signals
(tests/nbrun.py), not from printed text.

What isolation is given: each notebook runs in its own kernel, in a process group of its own,
killed after `--notebook-timeout` seconds (a hanging cell is graded, not fatal: the run stops at
the cell's limit and the exercises after it are "not run"), with resource limits (CPU time,
file size, no core dumps). What is not: the code runs as the user who grades, with that user's
files and network. Grade untrusted code in a throwaway virtual machine or container.
"""

import argparse
import csv
import html
import json
import os
import resource
import signal
import subprocess
import sys
import tempfile
from dataclasses import asdict, dataclass
from pathlib import Path

import nbformat

sys.path.insert(0, str(Path(__file__).resolve().parent))
sys.path.insert(0, str(Path(__file__).resolve().parent.parent / "kernel"))
from nbrun import ANSI, exercises, execute, role  # noqa: E402
from paths import REPO, use_this_clones_kernel  # noqa: E402
from workspace import workspace  # noqa: E402

NOTEBOOKS = REPO / "notebooks"
NOTEBOOK_TIMEOUT = 900
CELL_TIMEOUT = 120


@dataclass
class Grade:
    """One exercise of one student's notebook."""
    student: str
    notebook: str
    exercise: int
    status: str  # "pass", "fail", "not attempted", "not run", "not handed in"
    detail: str = ""


def answers_of(submission):
    """The sources of a submission's exercise cells, in order."""
    nb = nbformat.read(submission, as_version=4)
    return [cell.source for cell in nb.cells if role(cell) == "exercise"]


def graded_notebook(reference, answers, cell_timeout):
    """The course's notebook with the student's exercise cells in place of its own."""
    nb = nbformat.read(reference, as_version=4)
    for (exercise, _solution, _check), answer in zip(exercises(nb), answers):
        nb.cells[exercise].source = answer
    nb.metadata.setdefault("parcours", {})["cell_timeout"] = cell_timeout
    return nb


def first_line(text, marker):
    for line in ANSI.sub("", text or "").splitlines():
        if marker in line:
            return line.strip()
    return ""


def verdicts(reference, answers, cell_timeout, student="you"):
    """Runs the graded notebook in a fresh kernel; one Grade per exercise."""
    nb = graded_notebook(reference, answers, cell_timeout)
    with tempfile.NamedTemporaryFile("w", suffix=".ipynb", dir=reference.parent,
                                     prefix=f".graded-{reference.stem}-", delete=False) as tmp:
        nbformat.write(nb, tmp)
    try:
        run = execute(tmp.name, "stubs", answers=[], canary=True)
    finally:
        os.unlink(tmp.name)
    results = {cell.index: cell for cell in (run.passes[0] if run.passes else [])}
    grades = []
    for number, (exercise, _solution, check) in enumerate(exercises(nb), start=1):
        grade = Grade(student, reference.name, number, "pass")
        ran = results.get(check)
        if ran is None:
            grade.status, grade.detail = "not run", f"the run stopped before: {run.aborted}"
        elif ran.failed:
            failure = ran.failure or ""
            if "not yet implemented" in failure:
                grade.status = "not attempted"
            else:
                grade.status = "fail"
                written = results.get(exercise)
                grade.detail = (first_line(failure, "✘") or first_line(failure, "check failed")
                                or (first_line(written.failure, "error") if written and written.failed
                                    else "") or failure.strip().splitlines()[0][:200])
        grades.append(grade)
    canary = [c for c in run.failures(roles=("canary",))]
    if canary:  # the runner could not vouch for what it saw: no verdict is trusted
        for grade in grades:
            grade.status, grade.detail = "not run", canary[0].failure
    return grades


def limit_resources(cpu_seconds):
    """In the child, before it runs anything: its own process group, and limits."""
    def apply():
        os.setsid()
        resource.setrlimit(resource.RLIMIT_CPU, (cpu_seconds, cpu_seconds))
        resource.setrlimit(resource.RLIMIT_FSIZE, (2 << 30, 2 << 30))
        resource.setrlimit(resource.RLIMIT_CORE, (0, 0))
    return apply


def grade_in_child(student, submission, reference, notebook_timeout, cell_timeout):
    """Grades one notebook in a child process (limits, a wall-clock bound); never raises."""
    with tempfile.TemporaryDirectory() as scratch:
        out = Path(scratch) / "grades.json"
        command = [sys.executable, __file__, "--one", str(submission), "--reference",
                   str(reference), "--student", student, "--json", str(out),
                   "--cell-timeout", str(cell_timeout)]
        child = subprocess.Popen(command, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                                 text=True, preexec_fn=limit_resources(notebook_timeout * 4))
        try:
            _, errors = child.communicate(timeout=notebook_timeout)
        except subprocess.TimeoutExpired:
            os.killpg(child.pid, signal.SIGKILL)
            child.communicate()
            errors = f"the notebook did not finish within {notebook_timeout} s"
        if out.exists():
            return [Grade(**g) for g in json.loads(out.read_text())]
        reason = (errors or "").strip().splitlines()[-1:] or ["the grader stopped"]
        count = len(exercises(nbformat.read(reference, as_version=4)))
        return [Grade(student, reference.name, n, "not run", reason[0]) for n in range(1, count + 1)]


def grade_class(submissions, notebook_timeout=NOTEBOOK_TIMEOUT, cell_timeout=CELL_TIMEOUT,
                progress=print):
    """Every student's every course notebook with exercises: handed in or not."""
    grades = []
    students = sorted(p for p in Path(submissions).iterdir() if p.is_dir())
    # A student's folder holds the notebooks, or their whole workspace (notebooks/ inside it).
    handed = {s.name: {p.name: p for p in [*s.glob("notebooks/*.ipynb"), *s.glob("*.ipynb")]}
              for s in students}
    graded = sorted({name for names in handed.values() for name in names
                     if (NOTEBOOKS / name).exists()})
    for student in students:
        for name in graded:
            reference = NOTEBOOKS / name
            count = len(exercises(nbformat.read(reference, as_version=4)))
            if name not in handed[student.name]:
                grades += [Grade(student.name, name, n, "not handed in") for n in range(1, count + 1)]
                continue
            progress(f"{student.name}: {name}...")
            grades += grade_in_child(student.name, handed[student.name][name], reference, notebook_timeout,
                                     cell_timeout)
    return grades


MARKS = {"pass": "✔", "fail": "✘", "not attempted": "·", "not run": "…", "not handed in": "—"}


def write_report(grades, out):
    """report.csv (one row per student, notebook and exercise) and report.html (students ×
    exercises, the first difference shown on failures)."""
    out.mkdir(parents=True, exist_ok=True)
    with open(out / "report.csv", "w", newline="") as f:
        writer = csv.DictWriter(f, fieldnames=list(asdict(grades[0]))) if grades else None
        if writer:
            writer.writeheader()
            writer.writerows(asdict(g) for g in grades)
    columns = sorted({(g.notebook, g.exercise) for g in grades})
    students = sorted({g.student for g in grades})
    by = {(g.student, g.notebook, g.exercise): g for g in grades}
    rows = []
    for student in students:
        cells = []
        for notebook, exercise in columns:
            g = by.get((student, notebook, exercise))
            mark = MARKS.get(g.status, "?") if g else ""
            title = html.escape(f"{g.status}: {g.detail}" if g and g.detail else (g.status if g else ""))
            detail = f"<div class=d>{html.escape(g.detail[:160])}</div>" if g and g.detail else ""
            cells.append(f'<td class="{g.status.replace(" ", "-") if g else ""}" title="{title}">'
                         f"{mark}{detail}</td>")
        passed = sum(1 for g in grades if g.student == student and g.status == "pass")
        rows.append(f"<tr><th>{html.escape(student)}</th>{''.join(cells)}"
                    f"<td>{passed} / {len(columns)}</td></tr>")
    header = "".join(f"<th>{html.escape(n[:2])} ex. {e}</th>" for n, e in columns)
    legend = " · ".join(f"{mark} {status}" for status, mark in MARKS.items())
    (out / "report.html").write_text(
        "<!doctype html><meta charset=utf-8><title>Class report</title><style>"
        "body{font-family:sans-serif}td,th{border:1px solid #ccc;padding:4px 8px;"
        "vertical-align:top}.pass{background:#e6f4e6}.fail{background:#fbe3e3}"
        ".not-run{background:#fff4d6}.d{font-size:75%;color:#555;max-width:24em}</style>"
        f"<h1>Class report</h1><p>{legend}</p><table><tr><th>student</th>{header}"
        f"<th>passed</th></tr>{''.join(rows)}</table>\n")


def progress_report(notebooks, cell_timeout):
    """Your notebooks against the course's checks as committed (git), not as you may have
    edited them; one line per notebook."""
    for notebook in notebooks:
        committed = subprocess.run(["git", "show", f"HEAD:notebooks/{notebook.name}"], cwd=REPO,
                                   capture_output=True, text=True)
        reference = notebook
        if committed.returncode == 0:  # beside the lessons: relative paths hold there
            reference = NOTEBOOKS / f".committed-{notebook.name}"
            reference.write_text(committed.stdout)
        try:
            grades = verdicts(reference, answers_of(notebook), cell_timeout)
        finally:
            if reference != notebook:
                reference.unlink(missing_ok=True)
        line = "  ".join(f"{g.exercise} {MARKS[g.status]}" for g in grades)
        print(f"{notebook.name:48} {line}", flush=True)
    print("  ".join(f"{mark} {status}" for status, mark in MARKS.items()))


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("submissions", nargs="?", type=Path)
    parser.add_argument("--out", type=Path, default=Path("grading-report"))
    parser.add_argument("--notebook-timeout", type=int, default=NOTEBOOK_TIMEOUT)
    parser.add_argument("--cell-timeout", type=int, default=CELL_TIMEOUT)
    parser.add_argument("--progress", nargs="*", type=Path, metavar="NOTEBOOK")
    # Internal: one notebook, in the child process grade_in_child starts.
    parser.add_argument("--one", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--reference", type=Path, help=argparse.SUPPRESS)
    parser.add_argument("--student", help=argparse.SUPPRESS)
    parser.add_argument("--json", type=Path, help=argparse.SUPPRESS)
    args = parser.parse_args()
    os.environ.setdefault("PARCOURS_SMALL", "1")
    use_this_clones_kernel()
    if args.one:
        grades = verdicts(args.reference, answers_of(args.one), args.cell_timeout, args.student)
        args.json.write_text(json.dumps([asdict(g) for g in grades]))
        return
    if args.progress is not None:
        mine = workspace() / "notebooks"
        chosen = [p.resolve() for p in args.progress] or sorted(
            p for p in mine.glob("[0-9][0-9]-*.ipynb")
            if any(role(c) == "exercise" and "todo!(" not in c.source
                   for c in nbformat.read(p, as_version=4).cells))
        if not chosen:
            print(f"no exercise written yet in {mine}: every exercise cell still has its todo!()")
        progress_report(chosen, args.cell_timeout)
        return
    if not args.submissions or not args.submissions.is_dir():
        parser.error("SUBMISSIONS: a folder with one folder per student")
    grades = grade_class(args.submissions, args.notebook_timeout, args.cell_timeout)
    write_report(grades, args.out)
    passed = sum(g.status == "pass" for g in grades)
    print(f"{passed} of {len(grades)} exercises pass; report: {args.out / 'report.html'} "
          f"and {args.out / 'report.csv'}")


if __name__ == "__main__":
    main()
