"""Every notebook matches its text source (notebooks/source/*.md), the source survives a round
trip unchanged, and the check fails when a pair drifts apart. See notebook_sources.py.

Cell ids are not in the sources: they are not compared, and `to-notebook` keeps the ids of the
cells whose source is unchanged, so that editing one line changes one line of the .ipynb."""

import json
import shutil

import nbformat
import pytest

from conftest import NOTEBOOKS, REPO
from notebook_sources import (
    PAIRING, SOURCE_DIR, SourceError, check, notebook_from_source, notebook_of, pair_problems,
    source_of, source_text, to_notebook, to_source,
)

SOURCES = sorted((REPO / "notebooks" / SOURCE_DIR).glob("*.md"))


def test_every_notebook_has_a_source_and_every_source_a_notebook():
    assert SOURCES, "no source found under notebooks/source/"
    assert [source_of(path) for path in NOTEBOOKS] == SOURCES


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_notebook_matches_its_source(path):
    problems = pair_problems(path, source_of(path))
    assert not problems, (
        "\n".join(problems) + "\nedited the .md? `./course sources to-notebook`; "
        "edited the .ipynb? `./course sources to-source`")


@pytest.mark.parametrize("path", SOURCES, ids=[path.name for path in SOURCES])
def test_source_is_stable_through_a_round_trip(path):
    text = path.read_text(encoding="utf-8")
    notebook = notebook_from_source(text, nbformat.read(notebook_of(path), as_version=4))
    assert source_text(notebook) == text
    again = notebook_from_source(source_text(notebook), notebook)
    assert again == notebook, "md -> ipynb -> md -> ipynb changed the notebook"


def test_a_source_holds_everything_the_course_relies_on(tmp_path):
    """Cell types, sources, tags, hidden solutions, other cell metadata, the course's notebook
    metadata and the kernelspec survive ipynb -> md -> ipynb, with nothing but the .md."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": "parcours", "display_name": "Rust (parcours)", "language": "rust"}
    nb.metadata.parcours = {"title": "A test lesson", "module": 9, "minutes": 5,
                            "objectives": ["one thing", "and another, with a comma: and a colon"],
                            "cell_timeout": 600}
    exercise = nbformat.v4.new_code_cell("fn mean(xs: &[f64]) -> f64 {\n    todo!()\n}")
    exercise.metadata.tags = ["exercise"]
    solution = nbformat.v4.new_code_cell("fn mean(xs: &[f64]) -> f64 {\n    xs.iter().sum::<f64>() / xs.len() as f64\n}")
    solution.metadata.tags = ["solution"]
    solution.metadata.jupyter = {"source_hidden": True}
    checks = nbformat.v4.new_code_cell('check("mean", &mean(&[1.0, 3.0]), &2.0);')
    checks.metadata.tags = ["check"]
    note = nbformat.v4.new_markdown_cell("<details><summary>For the instructor</summary>\n\n"
                                         "```rust\nlet shown = \"not a cell\";\n```\n</details>")
    note.metadata.instructor = {"minutes": 3}
    nb.cells = [
        nbformat.v4.new_markdown_cell("# A test lesson\n\nIntroduction."),
        nbformat.v4.new_markdown_cell("A second markdown cell, right after the first."),
        nbformat.v4.new_code_cell("let x = 1;\n\n\nx + 1"),
        exercise, solution, checks, note,
        nbformat.v4.new_raw_cell("raw text"),
        nbformat.v4.new_code_cell(""),
    ]
    path = tmp_path / "99-test-lesson.ipynb"
    nbformat.write(nb, path)

    to_source(path)
    text = source_of(path).read_text()
    assert "```{code-cell} rust\n:tags: [exercise]\n" in text
    assert "jupyter:\n  source_hidden: true\ntags: [solution]\n" in text
    path.unlink()
    to_notebook(source_of(path))
    rebuilt = nbformat.read(path, as_version=4)

    expected_metadata = {**nb.metadata, "jupytext": PAIRING}
    assert rebuilt.metadata == expected_metadata
    assert [(c.cell_type, c.source, c.metadata) for c in rebuilt.cells] == \
        [(c.cell_type, c.source, c.metadata) for c in nb.cells]
    assert all(not c.outputs and c.execution_count is None for c in rebuilt.cells if c.cell_type == "code")
    assert check(tmp_path) == []


@pytest.fixture
def lessons(tmp_path):
    """A copy of the course's notebooks and sources."""
    for path in NOTEBOOKS:
        shutil.copy(path, tmp_path)
    shutil.copytree(REPO / "notebooks" / SOURCE_DIR, tmp_path / SOURCE_DIR)
    assert check(tmp_path) == [], "the committed notebooks and sources differ: see the other tests"
    return tmp_path


def edit_json(path, change):
    nb = json.loads(path.read_text())
    change(nb)
    path.write_text(json.dumps(nb, indent=1, ensure_ascii=False) + "\n")


def first_cell(nb, tag):
    return next(c for c in nb["cells"] if tag in c["metadata"].get("tags", []))


# What is altered in a copy of notebook 00's pair, how, and what the check must then say.
ALTERATIONS = {
    "a line of a code cell in the .md": (lambda d: replace_in(
        d / SOURCE_DIR / "00-how-this-course-works.md", "greeting.len()", "greeting.len() + 1"),
        "greeting.len() + 1"),
    "minutes in the .md": (lambda d: replace_in(
        d / SOURCE_DIR / "00-how-this-course-works.md", "minutes: 30", "minutes: 31"),
        "notebook metadata `parcours`"),
    "a tag in the .md": (lambda d: replace_in(
        d / SOURCE_DIR / "00-how-this-course-works.md", ":tags: [check]", ":tags: [exercise]", count=1),
        "'tags': ['exercise']"),
    "a markdown cell split in two in the .md": (lambda d: replace_in(
        d / SOURCE_DIR / "00-how-this-course-works.md", "The value of a cell's last expression",
        "+++\n\nThe value of a cell's last expression"),
        "32 cells in the .ipynb, 33 in the .md"),
    "a solution's tag changed in the .ipynb": (lambda d: edit_json(
        d / "00-how-this-course-works.ipynb",
        lambda nb: first_cell(nb, "solution")["metadata"].update(tags=["answer"])),
        "'tags': ['solution']"),
    "a markdown line in the .ipynb": (lambda d: edit_json(
        d / "00-how-this-course-works.ipynb",
        lambda nb: nb["cells"][0]["source"].append("\nOne more line.")),
        "'One more line.'"),
    "the kernelspec in the .ipynb": (lambda d: edit_json(
        d / "00-how-this-course-works.ipynb",
        lambda nb: nb["metadata"]["kernelspec"].update(name="rust")),
        "notebook metadata `kernelspec`"),
    "a source without its notebook": (
        lambda d: (d / "00-how-this-course-works.ipynb").unlink(), "has no notebook"),
    "a notebook without its source": (
        lambda d: (d / SOURCE_DIR / "00-how-this-course-works.md").unlink(), "has no source"),
    "a source not in jupytext's form": (lambda d: replace_in(
        d / SOURCE_DIR / "00-how-this-course-works.md", "## Cells are compiled Rust",
        "\n\n## Cells are compiled Rust"),
        "not in the form jupytext writes"),
}


def replace_in(path, old, new, count=-1):
    text = path.read_text()
    assert old in text, f"{old!r} is no longer in {path.name}: update this test"
    path.write_text(text.replace(old, new, count))


@pytest.mark.parametrize("alteration", ALTERATIONS)
def test_check_fails_when_a_pair_drifts_apart(lessons, alteration):
    alter, expected = ALTERATIONS[alteration]
    alter(lessons)
    problems = check(lessons)
    assert len(problems) == 1 and "00-how-this-course-works" in problems[0], problems
    assert expected in problems[0], problems[0]


def test_check_ignores_cell_ids_and_the_kernels_language_info(lessons):
    def change(nb):
        nb["cells"][0]["id"] = "changed-id"
        nb["metadata"]["language_info"]["version"] = "0.0.0"

    edit_json(lessons / "00-how-this-course-works.ipynb", change)
    assert check(lessons) == []


def test_to_notebook_changes_one_line_for_a_one_line_edit_and_twice_nothing(lessons):
    notebook = lessons / "22-threads-in-practice.ipynb"
    before = notebook.read_text().splitlines()
    source = source_of(notebook)
    lines = source.read_text().splitlines(keepends=True)
    index = next(i for i, line in enumerate(lines) if line.startswith("## "))
    lines[index] = lines[index].rstrip("\n") + " (edited)\n"
    source.write_text("".join(lines))

    assert to_notebook(source) == [notebook]
    after = notebook.read_text().splitlines()
    changed = [(old, new) for old, new in zip(before, after) if old != new]
    assert len(before) == len(after) and len(changed) == 1 and "(edited)" in changed[0][1], changed
    assert to_notebook(source) == [] and check(lessons) == []


def test_to_source_carries_a_notebook_edit_in_one_line(lessons):
    notebook = lessons / "22-threads-in-practice.ipynb"
    source = source_of(notebook)
    before = source.read_text().splitlines()
    nb = nbformat.read(notebook, as_version=4)
    cell = next(c for c in nb.cells if c.cell_type == "code")
    cell.source += "\n// edited"
    cell.outputs = [nbformat.v4.new_output("stream", text="an output the notebook must lose")]
    cell.metadata.scrolled = True  # JupyterLab's display state, kept out of the source
    nbformat.write(nb, notebook)

    assert sorted(to_source(notebook)) == sorted([source, notebook])
    after = source.read_text().splitlines()
    assert [line for line in after if line not in before] == ["// edited"]
    assert len(after) == len(before) + 1
    assert "an output the notebook must lose" not in notebook.read_text()
    assert check(lessons) == [] and to_source(notebook) == []


def test_to_source_refuses_what_a_source_cannot_hold(lessons):
    notebook = lessons / "00-how-this-course-works.ipynb"
    edit_json(notebook, lambda nb: nb["cells"][0].update(
        attachments={"logo.png": {"image/png": "iVBORw0KGgo="}}))
    before = source_of(notebook).read_text()
    with pytest.raises(SourceError, match="attachments"):
        to_source(notebook)
    assert source_of(notebook).read_text() == before


def test_jupyterlab_saves_the_notebook_and_its_source_together(lessons):
    """What the README promises: JupyterLab with jupytext (its contents manager) writes both
    files of a pair on save, in the form the check expects; and opening a notebook whose source
    was edited shows the source's cells."""
    from jupytext import TextFileContentsManager

    manager = TextFileContentsManager(root_dir=str(lessons))
    name = "00-how-this-course-works.ipynb"
    model = manager.get(name)
    cell = next(c for c in model["content"]["cells"] if c["cell_type"] == "code")
    cell["source"] += "\n// saved from JupyterLab"
    manager.save(model, name)
    assert "// saved from JupyterLab" in source_of(lessons / name).read_text()
    assert check(lessons) == []

    replace_in(source_of(lessons / name), "// saved from JupyterLab", "// edited in the source")
    opened = manager.get(name)["content"]
    assert any("// edited in the source" in c["source"] for c in opened["cells"])
