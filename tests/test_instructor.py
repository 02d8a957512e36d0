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


def student_copy(folder, student, answers, within=""):
    """Notebook 00 as `student` hands it in (in `within`: "notebooks" for a whole workspace):
    `answers` {exercise number: code} in its exercise cells (the others keep their todo!())."""
    reference = REPO / "notebooks" / "00-how-this-course-works.ipynb"
    nb = nbformat.read(reference, as_version=4)
    for number, (exercise, _solution, _check) in enumerate(exercises(nb), start=1):
        if number in answers:
            nb.cells[exercise].source = answers[number]
    # What a submission does to what it does not own is ignored: only exercise cells count.
    for cell in nb.cells:
        if "check" in cell.metadata.get("tags", []):
            cell.source = 'println!("✔ all good");'
    (folder / student / within).mkdir(parents=True)
    nbformat.write(nb, folder / student / within / reference.name)


def test_grade_reads_each_exercise_of_a_class_from_the_course_checks(tmp_path):
    from grade import grade_class, write_report
    from nbrun import solution_code, wrong_answers
    reference = REPO / "notebooks" / "00-how-this-course-works.ipynb"
    nb = nbformat.read(reference, as_version=4)
    solutions = {n: solution_code(nb.cells[s])
                 for n, (_, s, _) in enumerate(exercises(nb), start=1)}
    wrong = next(a for a in wrong_answers(reference) if a.exercise == 1)
    submissions = tmp_path / "class"
    student_copy(submissions, "alice", solutions)
    student_copy(submissions, "bob", {**solutions, 1: wrong.code}, within="notebooks")
    hang = solutions[2].replace("{", "{ loop { std::thread::sleep(std::time::Duration::from_secs(1)); }", 1)
    student_copy(submissions, "carol", {1: solutions[1], 2: hang})
    (submissions / "dave").mkdir()
    grades = grade_class(submissions, notebook_timeout=600, cell_timeout=20, progress=lambda _: None)
    got = {(g.student, g.exercise): g for g in grades}
    assert [got["alice", n].status for n in (1, 2)] == ["pass", "pass"], grades
    assert (got["bob", 1].status, got["bob", 2].status) == ("fail", "pass"), grades
    assert "✘" in got["bob", 1].detail, got["bob", 1]
    assert (got["carol", 1].status, got["carol", 2].status) == ("pass", "fail"), grades
    assert "no result after 20 s" in got["carol", 2].detail, got["carol", 2]
    assert [got["dave", n].status for n in (1, 2)] == ["not handed in"] * 2
    write_report(grades, tmp_path / "report")
    page = (tmp_path / "report" / "report.html").read_text()
    assert all(name in page for name in ("alice", "bob", "carol", "dave"))
    rows = (tmp_path / "report" / "report.csv").read_text().splitlines()
    assert rows[0] == "student,notebook,exercise,status,detail" and len(rows) == 9
