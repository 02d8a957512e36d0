"""Every notebook: committed clean, runs clean with the solutions (twice in one kernel), fails
every check with the stubs, and refuses the wrong answers kept for it. See nbrun.py for the
exercise pattern."""

import os
import re
from pathlib import Path

import nbformat
import pytest

from conftest import NOTEBOOKS, REPO
from nbrun import (KERNEL, WRONG_ANSWERS, execute, exercises, memory_budget, refused,
                   role, solution_code, wrong_answers)

ids = [path.name for path in NOTEBOOKS]
# A Binder session gets 2 GiB at most (JupyterHub's "2G" counts 1024³ bytes), JupyterLab's own
# server included: a notebook's kernel, compilers included, stays under this, leaving the server
# about 150 MiB, unless its metadata says why it cannot (parcours.beyond_binder) and the README's
# memory table says so; then the ceiling is half of a student's 8 GB laptop (the README's
# "Platforms": 44 and 45 need more than a 4 GB machine).
MEMORY_CEILING_MIB = 1900  # 1.86 GiB
MEMORY_CEILING_BEYOND_BINDER_MIB = 4096  # 4 GiB


def still_without_wrong_answer():
    """{notebook's name: exercise numbers}, from the list in tests/wrong_answers/README.md."""
    listed = {}
    for name, numbers in re.findall(r"^- `(\d\d-[a-z0-9-]+)`: exercises? ([\d, ]+)$",
                                    (WRONG_ANSWERS / "README.md").read_text(), re.M):
        listed[name] = {int(n) for n in numbers.replace(",", " ").split()}
    return listed


STILL_WITHOUT_WRONG_ANSWER = still_without_wrong_answer()


def within_memory_budget(path, run):
    """Fails when the run's first pass went over the notebook's budget (metadata
    parcours.memory_mib, docs/architecture.md); appends the figure to $PARCOURS_MEMORY_REPORT."""
    nb = nbformat.read(path, as_version=4)
    budget = memory_budget(nb)
    peak = run.peak_memory[0] / 2**20
    if report := os.environ.get("PARCOURS_MEMORY_REPORT"):
        with open(report, "a") as out:
            out.write(f"{path.name}\t{run.modes[0]}\t{peak:.0f}\t"
                      f"{'' if budget is None else budget // 2**20}\n")
    assert budget is not None, "metadata parcours.memory_mib: the notebook's memory budget"
    ceiling = MEMORY_CEILING_BEYOND_BINDER_MIB if beyond_binder(nb) else MEMORY_CEILING_MIB
    assert budget <= ceiling * 2**20, f"a budget over {ceiling} MiB"
    assert peak * 2**20 <= budget, (
        f"one pass ({run.modes[0]}) peaked at {peak:.0f} MiB (PSS of the kernel and every process "
        f"under it), over the notebook's budget of {budget // 2**20} MiB; at the run's highest "
        "sample: " + ", ".join(f"{name} {size / 2**20:.0f} MiB" for name, size in sorted(
            run.memory_breakdown.items(), key=lambda part: -part[1])))


def beyond_binder(nb):
    """Why the notebook cannot fit a 2 GB hosted session, if it says so (parcours.beyond_binder)."""
    return nb.metadata.get("parcours", {}).get("beyond_binder")


@pytest.mark.parametrize("path", [p for p in NOTEBOOKS if beyond_binder(nbformat.read(p, as_version=4))],
                         ids=lambda p: p.name)
def test_a_notebook_beyond_binder_says_so_to_its_reader_and_in_the_readme(path):
    nb = nbformat.read(path, as_version=4)
    first = next(cell for cell in nb.cells if cell.cell_type == "markdown")
    assert "Binder" in first.source and "memory" in first.source, (
        "a notebook that cannot run in a 2 GB hosted session says so in its first cell")
    row = re.search(rf"^\| {path.name[:2]} \|.*$", (REPO / "README.md").read_text(), re.M)
    assert row and "beyond Binder" in row[0], "the README's memory table marks it beyond Binder"


def test_there_are_notebooks():
    assert NOTEBOOKS, "no notebook found under notebooks/"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_committed_without_outputs_and_with_course_metadata(path):
    nb = nbformat.read(path, as_version=4)
    nbformat.validate(nb)
    assert nb.metadata.kernelspec.name == KERNEL
    course = nb.metadata.get("parcours", {})
    assert isinstance(course.get("title"), str) and course["title"], "metadata.parcours.title"
    assert course.get("objectives") and all(isinstance(o, str) for o in course["objectives"])
    assert isinstance(course.get("minutes"), int) and course["minutes"] > 0
    assert re.match(r"\d\d-", path.name), "notebooks are numbered: NN-title.ipynb"
    for index, cell in enumerate(nb.cells):
        if cell.cell_type == "code":
            assert not cell.outputs, f"cell {index} has outputs: clear them before committing"
            assert cell.execution_count is None, f"cell {index} has an execution count"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_exercises_follow_the_pattern(path):
    nb = nbformat.read(path, as_version=4)
    roles = [(index, role(cell)) for index, cell in enumerate(nb.cells) if role(cell)]
    sequence = [r for _, r in roles]
    assert len(sequence) % 3 == 0 and all(
        sequence[i:i + 3] == ["exercise", "solution", "check"] for i in range(0, len(sequence), 3)
    ), f"exercise cells must come as exercise, solution, check: {sequence}"
    assert len(exercises(nb)) == len(sequence) // 3
    for index, cell_role in roles:
        cell = nb.cells[index]
        if cell_role == "exercise":
            assert cell.cell_type == "code" and "todo!(" in cell.source, \
                f"exercise cell {index} is a code cell with a todo!()"
        if cell_role == "check":
            assert cell.cell_type == "code", f"check cell {index} is a code cell"
        if cell_role == "solution":
            # A markdown cell: Run All never runs it over the student's code.
            assert cell.cell_type == "markdown", f"solution cell {index} is not a markdown cell"
            assert cell.source.startswith("<details><summary>Solution</summary>") and \
                cell.source.rstrip().endswith("</details>"), \
                f"solution cell {index} is not a collapsed <details> block"
            assert "todo!(" not in solution_code(cell), f"solution cell {index} still has todo!()"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_wrong_answers_belong_to_exercises(path):
    """Every wrong answer kept for a notebook names one of its exercises; every exercise has
    one, except those listed in tests/wrong_answers/README.md as still to write."""
    nb = nbformat.read(path, as_version=4)
    count = len(exercises(nb))
    answers = wrong_answers(path)
    assert all(1 <= a.exercise <= count for a in answers), \
        f"{[a.exercise for a in answers]}: the notebook has {count} exercises"
    missing = sorted({n for n in range(1, count + 1)} - {a.exercise for a in answers})
    listed = sorted(STILL_WITHOUT_WRONG_ANSWER.get(path.stem, set()))
    assert missing == listed, (
        f"exercises without a wrong answer: {missing}; tests/wrong_answers/README.md lists "
        f"{listed}")


SLIDE_TYPES = {"slide", "subslide", "fragment", "skip", "notes", "-"}


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_is_a_slideshow_with_a_slide_per_section(path):
    """RISE (jupyterlab-rise, in the course's environment) shows a notebook as slides: the title
    and every `## ` section start a slide, every exercise a sub-slide."""
    nb = nbformat.read(path, as_version=4)
    kinds = [cell.metadata.get("slideshow", {}).get("slide_type") for cell in nb.cells]
    assert all(kind is None or kind in SLIDE_TYPES for kind in kinds), set(kinds)
    assert kinds[0] == "slide", "the title cell starts a slide"
    for cell, kind in zip(nb.cells, kinds):
        if cell.cell_type == "markdown" and cell.source.startswith("## "):
            assert kind == "slide", f"section {cell.source.splitlines()[0]!r} starts no slide"
        if cell.cell_type == "markdown" and cell.source.startswith("### Exercise"):
            assert kind == "subslide", f"{cell.source.splitlines()[0]!r} starts no sub-slide"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_opens_with_a_title_a_pitch_and_links(path):
    """The first cell: `# NN · title` (the metadata's), a one-line pitch in italics, then what
    the lesson needs or is about, with links."""
    nb = nbformat.read(path, as_version=4)
    first = nb.cells[0]
    assert first.cell_type == "markdown", "the first cell is the title cell"
    lines = first.source.strip().splitlines()
    assert lines[0] == f"# {path.name[:2]} · {nb.metadata.parcours.title}", lines[0]
    assert len(lines) > 2 and re.fullmatch(r"\*[^*].*[^*]\*", lines[2]), \
        "a one-line pitch in italics after the title"
    assert re.search(r"\]\([^)]+\)", first.source), "links to read further"


@pytest.mark.parametrize("path", NOTEBOOKS, ids=ids)
def test_relative_links_resolve(path):
    nb = nbformat.read(path, as_version=4)
    for cell in nb.cells:
        if cell.cell_type != "markdown":
            continue
        for target in re.findall(r"\]\(([^)\s]+)\)", cell.source):
            if re.match(r"[a-z]+:", target) or target.startswith("#"):
                continue
            assert (path.parent / target.split("#")[0]).exists(), f"broken link {target}"


# How a cell after an exercise fails when the student has written nothing: it called a stub
# (`todo!()`), or it names a value that the stub's `let ... = todo!()` never declared.
CALLED_A_STUB = ("not yet implemented", "E0425")


def shared_scratch_groups():
    """{notebook: folder name} for the notebooks that write the same scratch folder
    (`parcours::notebook::scratch`, as 51 and 52 share their event files)."""
    users = {}
    for path in NOTEBOOKS:
        code = "\n".join(cell.source for cell in nbformat.read(path, as_version=4).cells)
        for name in set(re.findall(r'scratch\("([^"]+)"\)', code)):
            users.setdefault(name, []).append(path)
    groups = {}
    for name, paths in sorted(users.items()):
        for path in paths if len(paths) > 1 else ():
            groups.setdefault(path, name)
    return groups


def notebook_runs(paths):
    """The notebooks as test runs, in the course's order. Notebooks that write the same scratch
    folder are one run, one after the other, so that `./course test`, which runs two
    notebooks at a time (pytest-xdist), never runs them at once, writing each other's files. (xdist's own `xdist_group` does not
    group under pytest 9, which no longer reads the node id xdist rewrites.)"""
    groups = shared_scratch_groups()
    runs = {}
    for path in paths:
        runs.setdefault(groups.get(path, path), []).append(path)
    return [pytest.param(run, id="+".join(path.name for path in run)) for run in runs.values()]


def test_notebooks_that_share_a_scratch_folder_run_one_after_the_other():
    runs = [param.values[0] for param in notebook_runs(NOTEBOOKS)]
    assert [[path.name[:2] for path in run] for run in runs if len(run) > 1] == [["51", "52"]]
    assert sorted(path for run in runs for path in run) == sorted(NOTEBOOKS)


@pytest.mark.parametrize("paths", notebook_runs(NOTEBOOKS))
def test_runs_clean_with_solutions_then_every_check_fails_with_the_stubs(paths):
    """One kernel runs the notebook twice, as a class that re-runs it does: first with the
    reference solutions, where every cell must pass within the notebook's memory budget; then
    as a student who has written nothing, where every check must fail on its stub's `todo!()`
    and refuse each wrong answer (tests/wrong_answers/), and any other cell may fail only
    because it used a stub (CALLED_A_STUB). A notebook without exercises runs its solutions
    twice. Notebooks that share a scratch folder run one after the other."""
    for path in paths:
        try:
            runs_clean_then_fails_with_the_stubs(path)
        except AssertionError as error:
            raise AssertionError(f"{path.name}: {error}") from None


def runs_clean_then_fails_with_the_stubs(path):
    nb = nbformat.read(path, as_version=4)
    has_exercises = any(role(cell) == "exercise" for cell in nb.cells)
    run = execute(path, modes=["solutions", "stubs" if has_exercises else "solutions"])
    assert not run.aborted, run.aborted + "\n" + run.describe(run.failures())
    failures = run.failures(mode="solutions") + run.failures(roles=("canary",))
    assert not failures, "cells failed:\n" + run.describe(failures)
    within_memory_budget(path, run)
    if not has_exercises:
        return
    stubs = run.pass_in("stubs")
    first_exercise = min(e for e, _, _ in exercises(nb))
    broken = [c for c in stubs if c.failed and c.role != "check" and not (
        c.index > first_exercise and any(sign in c.failure for sign in CALLED_A_STUB))]
    assert not broken, "cells failed in the second pass, not on a stub:\n" + run.describe(broken)
    checks = [c for c in stubs if c.role == "check"]
    passing = [c for c in checks if not c.failed]
    assert checks and not passing, "checks pass without a solution:\n" + run.describe(passing)
    # The checks fail because the stubs panic, not because something else broke.
    for check in checks:
        assert "not yet implemented" in check.failure, run.describe([check])
    # After each check, its wrong answers ran in place of the exercise: it must refuse them.
    assert len(run.wrong) == len(wrong_answers(path))
    problems = refused(run)
    assert not problems, "\n".join(problems)


# Module 4's task-queue lessons load this crate; they run on Redis by default and must run on
# the embedded broker too (PARCOURS_BROKER=sqlite: a machine without redis-server). The solutions
# pass only: the stubs pass would check the same cells again.
QUEUE_LESSONS = [path for path in NOTEBOOKS if ":dep parcours-queue " in path.read_text()]


@pytest.mark.parametrize("path", QUEUE_LESSONS, ids=[path.name for path in QUEUE_LESSONS])
def test_task_queue_lessons_run_clean_on_sqlite_too(path, monkeypatch):
    monkeypatch.setenv("PARCOURS_BROKER", "sqlite")
    run = execute(path, modes=["solutions"])
    assert not run.aborted, run.aborted + "\n" + run.describe(run.failures())
    failures = run.failures()
    assert not failures, "cells failed on SQLite:\n" + run.describe(failures)
    within_memory_budget(path, run)


def test_readme_outline_lists_every_notebook_with_its_minutes():
    readme = (REPO / "README.md").read_text()
    for path in NOTEBOOKS:
        course = nbformat.read(path, as_version=4).metadata.parcours
        rows = [line for line in readme.splitlines() if f"(notebooks/{path.name})" in line]
        assert rows, f"README's outline has no row for {path.name}"
        assert f"| {course['module']} | {course['minutes']} |" in rows[0], rows[0]
