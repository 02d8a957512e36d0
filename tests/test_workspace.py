"""A student's workspace (kernel/workspace.py): their notebooks outside the clone, so that
`./course update` brings new lessons and never touches their work."""

import json
import os
import subprocess
import sys
from pathlib import Path

import nbformat

from conftest import REPO

sys.path.insert(0, str(REPO / "kernel"))
from workspace import sync  # noqa: E402

FIRST = "00-how-this-course-works.ipynb"


def lesson(path, text):
    nb = nbformat.v4.new_notebook()
    nb.cells = [nbformat.v4.new_markdown_cell(text)]
    nbformat.write(nb, path)


def a_course(folder):
    """A clone's shape: two lessons, the crates and the material the lessons reach."""
    (folder / "notebooks" / "data").mkdir(parents=True)
    (folder / "support-crate" / "toolbox").mkdir(parents=True)
    (folder / "support-crate" / "toolbox" / "Cargo.toml").write_text("[package]\n")
    (folder / "docs").mkdir()
    (folder / "README.md").write_text("# the course\n")
    lesson(folder / "notebooks" / "00-first.ipynb", "first")
    lesson(folder / "notebooks" / "11-second.ipynb", "second")
    return folder


def test_a_first_sync_copies_every_lesson_and_links_what_the_lessons_reach(tmp_path):
    course, work = a_course(tmp_path / "course"), tmp_path / "work"
    said = []
    changes = sync(course, work, said.append)
    assert changes["new"] == ["00-first.ipynb", "11-second.ipynb"], changes
    assert any("your notebooks are in" in line for line in said), said
    mine = work / "notebooks"
    assert (mine / "00-first.ipynb").read_bytes() == (course / "notebooks" / "00-first.ipynb").read_bytes()
    # A notebook's `:dep parcours-x = { path = "../support-crate/x" }`, from its own folder.
    assert (mine / ".." / "support-crate" / "toolbox" / "Cargo.toml").resolve() == \
        (course / "support-crate" / "toolbox" / "Cargo.toml").resolve()
    assert (mine / "data").resolve() == (course / "notebooks" / "data").resolve()
    assert sync(course, work, said.append) == {"new": [], "updated": [], "kept": []}


def test_an_update_keeps_the_students_work_and_brings_what_they_did_not_touch(tmp_path):
    course, work = a_course(tmp_path / "course"), tmp_path / "work"
    sync(course, work, lambda _: None)
    mine = work / "notebooks"
    lesson(mine / "00-first.ipynb", "first, with my answers")
    # The course changes both lessons and adds a third.
    lesson(course / "notebooks" / "00-first.ipynb", "first, corrected")
    lesson(course / "notebooks" / "11-second.ipynb", "second, corrected")
    lesson(course / "notebooks" / "12-third.ipynb", "third")
    said = []
    changes = sync(course, work, said.append)
    assert changes == {"new": ["12-third.ipynb"], "updated": ["11-second.ipynb"],
                       "kept": ["00-first.ipynb"]}, changes
    assert "my answers" in (mine / "00-first.ipynb").read_text()
    assert "second, corrected" in (mine / "11-second.ipynb").read_text()
    assert any("00-first.ipynb changed in the course; your copy is kept" in line
               and str(course / "notebooks" / "00-first.ipynb") in line for line in said), said
    # Said once; a copy the student deletes comes back as the new lesson.
    assert sync(course, work, lambda _: None) == {"new": [], "updated": [], "kept": []}
    (mine / "00-first.ipynb").unlink()
    assert sync(course, work, lambda _: None)["new"] == ["00-first.ipynb"]
    assert "corrected" in (mine / "00-first.ipynb").read_text()
    assert not list(mine.glob(".*partial")) and not list(work.glob(".parcours/*.partial"))


def test_a_moved_clone_is_linked_again_and_a_students_own_folder_is_kept(tmp_path):
    old, work = a_course(tmp_path / "old"), tmp_path / "work"
    sync(old, work, lambda _: None)
    new = a_course(tmp_path / "new")
    (work / "docs").unlink()
    (work / "docs").mkdir()  # the student's own folder where a link was
    said = []
    sync(new, work, said.append)
    assert (work / "support-crate").resolve() == (new / "support-crate").resolve()
    assert (work / "docs").is_dir() and not (work / "docs").is_symlink()
    assert any(f"kept {work / 'docs'}" in line for line in said), said


def git(folder, *args):
    subprocess.run(["git", "-C", str(folder), "-c", "user.name=Course", "-c",
                    "user.email=course@example.org", *args], check=True, capture_output=True)


def test_course_update_pulls_new_lessons_without_touching_the_students_notebooks(tmp_path):
    """The real command, on a clone of a clone: the course publishes a new lesson and changes
    one the student has answered."""
    upstream, clone, work = tmp_path / "upstream", tmp_path / "clone", tmp_path / "work"
    subprocess.run(["git", "clone", "-q", str(REPO), str(upstream)], check=True)
    subprocess.run(["git", "clone", "-q", str(upstream), str(clone)], check=True)
    env = dict(os.environ, PARCOURS_WORKSPACE=str(work))
    subprocess.run([sys.executable, str(clone / "kernel" / "workspace.py"), "sync"], env=env,
                   check=True, capture_output=True)
    answered = nbformat.read(work / "notebooks" / FIRST, as_version=4)
    answered.cells.append(nbformat.v4.new_code_cell("// my answer"))
    nbformat.write(answered, work / "notebooks" / FIRST)

    changed = nbformat.read(upstream / "notebooks" / FIRST, as_version=4)
    changed.cells.append(nbformat.v4.new_markdown_cell("A paragraph the course added."))
    nbformat.write(changed, upstream / "notebooks" / FIRST)
    lesson(upstream / "notebooks" / "99-a-new-lesson.ipynb", "new")
    git(upstream, "add", "notebooks")
    git(upstream, "commit", "-q", "-m", "A new lesson")

    done = subprocess.run([str(clone / "course"), "update"], env=env, capture_output=True,
                          text=True, timeout=300)
    said = done.stdout + done.stderr
    assert done.returncode == 0, said
    assert "new lessons: 99-a-new-lesson.ipynb" in said, said
    assert f"{FIRST} changed in the course; your copy is kept" in said, said
    assert "// my answer" in (work / "notebooks" / FIRST).read_text()
    assert (work / "notebooks" / "99-a-new-lesson.ipynb").is_file()
    assert "A paragraph the course added." in (clone / "notebooks" / FIRST).read_text()
    status = subprocess.run(["git", "-C", str(clone), "status", "--porcelain"],
                            capture_output=True, text=True).stdout
    assert status == "", status
    record = json.loads((work / ".parcours" / "copied.json").read_text())
    assert "99-a-new-lesson.ipynb" in record
