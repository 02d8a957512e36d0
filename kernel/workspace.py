"""The student's workspace: their own copies of the course's notebooks, outside the clone.

A student edits and saves notebooks; if those were the clone's files, `git pull` would
conflict with their work. So `./course open` serves a workspace (`PARCOURS_WORKSPACE`, default
`~/parcours-work`), created on first open:

    notebooks/NN-*.ipynb      the student's copies of the lessons
    notebooks/data, notebooks/ansible -> the clone's (what the lessons read beside them)
    support-crate, docs, README.md    -> the clone's (the notebooks' `../support-crate/...`
                                         paths and their links; evcxr resolves a `:dep` path
                                         through the link, so the kernel builds the clone's crates)
    .parcours/copied.json     the lesson each copy was made from (a hash), to tell a student's
                              edit from a lesson the course has changed since

Each sync (every `./course open`, and `./course update` after its `git pull`) copies the
lessons the workspace lacks, replaces a copy the student never changed when its lesson
changed, and keeps an edited copy, saying where the new lesson is. It never deletes a file.

    python kernel/workspace.py sync      # what ./course open and ./course update run
    python kernel/workspace.py path      # the workspace's folder
"""

import hashlib
import json
import os
import shutil
import sys
from pathlib import Path

from paths import REPO

LINKS = ["support-crate", "docs", "README.md", "notebooks/data", "notebooks/ansible"]
LESSON = "[0-9][0-9]-*.ipynb"


def workspace():
    """`PARCOURS_WORKSPACE`, else `~/parcours-work`."""
    return Path(os.environ.get("PARCOURS_WORKSPACE") or Path.home() / "parcours-work")


def digest(path):
    return hashlib.sha256(path.read_bytes()).hexdigest()


def link(target, at, say):
    """`at` -> `target`, made or re-pointed (a clone that moved); a real file there is kept."""
    if at.is_symlink():
        if Path(os.readlink(at)) == target:
            return
        at.unlink()
    elif at.exists():
        say(f"kept {at}: it is not a link to the course's {target.name}, so lessons that use "
            f"it may not find the course's files (rename it, then open again)")
        return
    at.symlink_to(target, target_is_directory=target.is_dir())


def sync(repo=REPO, work=None, say=print):
    """Brings the workspace up to the clone's lessons; returns {"new": [...], "updated": [...],
    "kept": [...]} (lesson names)."""
    work = work or workspace()
    record_file = work / ".parcours" / "copied.json"
    first = not (work / "notebooks").is_dir()
    (work / "notebooks").mkdir(parents=True, exist_ok=True)
    record_file.parent.mkdir(exist_ok=True)
    for name in LINKS:
        if (repo / name).exists():
            link((repo / name).resolve(), work / name, say)
    record = json.loads(record_file.read_text()) if record_file.is_file() else {}
    changes = {"new": [], "updated": [], "kept": []}
    for lesson in sorted((repo / "notebooks").glob(LESSON)):
        mine = work / "notebooks" / lesson.name
        course = digest(lesson)
        if not mine.exists():
            changes["new"].append(lesson.name)
        elif record.get(lesson.name) == course:
            continue
        elif digest(mine) in (record.get(lesson.name), course):
            if digest(mine) != course:  # untouched since copied: take the new lesson
                changes["updated"].append(lesson.name)
        else:
            changes["kept"].append(lesson.name)
            record[lesson.name] = course  # say it once per change of the lesson
            continue
        partial = mine.with_name(f".{mine.name}.partial")
        shutil.copyfile(lesson, partial)
        partial.replace(mine)  # a copy cut short never replaces a notebook
        record[lesson.name] = course
    partial = record_file.with_suffix(".partial")
    partial.write_text(json.dumps(record, indent=1, sort_keys=True))
    partial.replace(record_file)
    if first:
        say(f"your notebooks are in {work / 'notebooks'} (your copies: edit them freely, "
            "./course update never overwrites your work)")
    elif changes["new"]:
        say("new lessons: " + ", ".join(changes["new"]))
    if changes["updated"]:
        say("lessons updated (you had not changed them): " + ", ".join(changes["updated"]))
    for name in changes["kept"]:
        say(f"{name} changed in the course; your copy is kept. The new lesson is "
            f"{repo / 'notebooks' / name}: open it beside yours, or delete yours and "
            "open the course again to get it")
    return changes


def main():
    command = sys.argv[1:] or ["sync"]
    if command == ["sync"]:
        sync()
    elif command == ["path"]:
        print(workspace())
    else:
        sys.exit(f"usage: {sys.argv[0]} [sync|path]")


if __name__ == "__main__":
    main()
