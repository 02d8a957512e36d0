"""The instructor's material (docs/instructor/): speaker notes for every notebook, the tracks
and the schedule written from them, and the notebooks with their solutions executed."""

import re

import nbformat
import pytest

import schedule
from conftest import NOTEBOOKS, REPO
from nbrun import exercises
from solutions import write_solutions

NOTES = REPO / "docs" / "instructor" / "notes"


def headings(text, level):
    return [line[level + 1:].strip() for line in text.splitlines()
            if line.startswith("#" * level + " ")]


@pytest.mark.parametrize("path", NOTEBOOKS, ids=[path.name for path in NOTEBOOKS])
def test_every_notebook_has_speaker_notes_that_follow_it(path):
    notes = NOTES / f"{path.stem}.md"
    assert notes.exists(), f"no speaker notes: write {notes.relative_to(REPO)}"
    text = notes.read_text()
    nb = nbformat.read(path, as_version=4)
    course = nb.metadata.parcours
    assert text.splitlines()[0] == f"# {path.name[:2]} · {course.title} — speaker notes"
    parts = headings(text, 2)
    for part in ["The point of the lesson", "Before class", "Section by section",
                 "If time is short"]:
        assert part in parts, f"{notes.name}: no '## {part}'"
    lesson = "\n".join(cell.source for cell in nb.cells if cell.cell_type == "markdown")
    sections = headings(lesson, 2)
    by_section = text.split("## Section by section", 1)[1].split("\n## ", 1)[0]
    for section in headings(by_section, 3):
        assert section in sections, f"{notes.name}: '### {section}' is no section of the notebook"
    count = len(exercises(nb))
    if count:
        notes_exercises = text.split("## Exercises", 1)[1].split("\n## ", 1)[0]
        numbers = [int(n) for n in re.findall(r"^### Exercise (\d+)", notes_exercises, re.M)]
        assert numbers == list(range(1, count + 1)), f"{notes.name}: exercises {numbers}"
    asks = "Questions to consider" in lesson
    answers = "Answers to the questions to consider" in parts
    assert asks == answers, f"{notes.name}: the notebook {'asks' if asks else 'asks no'} " \
                            "questions to consider; the notes must answer exactly those"
    for target in re.findall(r"\]\(([^)\s]+)\)", text):
        if not re.match(r"[a-z]+:", target) and not target.startswith("#"):
            assert (notes.parent / target.split("#")[0]).exists(), f"broken link {target}"


def test_every_track_fits_its_length_and_the_schedule_is_up_to_date():
    text = schedule.schedule()
    assert (REPO / "docs" / "schedule.md").read_text() == text, "run ./course schedule"
    assert text.count("\n## ") == 4


def test_a_track_longer_than_its_time_or_naming_a_missing_section_is_refused():
    lessons = schedule.notebooks()
    too_long = {"name": "short", "minutes": 30, "steps": [{"notebook": "00"}, {"notebook": "12"}]}
    with pytest.raises(schedule.TrackError, match="takes 85 min, more than its 30"):
        schedule.resolve(too_long, lessons)
    missing = {"name": "x", "minutes": 60,
               "steps": [{"notebook": "12", "minutes": 10, "sections": ["No such section"]}]}
    with pytest.raises(schedule.TrackError, match="no section"):
        schedule.resolve(missing, lessons)


def test_solutions_writes_the_notebook_executed_with_every_solution_in_place(tmp_path):
    notebook = REPO / "notebooks" / "00-how-this-course-works.ipynb"
    assert write_solutions(notebook, tmp_path) == []
    written = nbformat.read(tmp_path / notebook.name, as_version=4)
    original = nbformat.read(notebook, as_version=4)
    assert len(written.cells) == len(original.cells) - len(exercises(original))
    answers = [cell for cell in written.cells if "exercise" in cell.metadata.get("tags", [])]
    assert answers and not any("todo!(" in cell.source for cell in answers)
    assert not any("Solution</summary>" in cell.source for cell in written.cells)
    checks = [cell for cell in written.cells if "check" in cell.metadata.get("tags", [])]
    shown = ["".join(o.get("text", "") for o in cell.outputs) for cell in checks]
    assert checks and all("✔" in text and "✘" not in text for text in shown), shown
