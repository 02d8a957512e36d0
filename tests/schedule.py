"""The course's tracks, as a schedule: docs/schedule.md is written from
docs/instructor/tracks.yaml and each notebook's `parcours.minutes`.

    python tests/schedule.py            write docs/schedule.md (or: ./course schedule)
    python tests/schedule.py --check    exit 1 if docs/schedule.md is not up to date
"""

import argparse
import sys
from pathlib import Path

import nbformat
import yaml

REPO = Path(__file__).resolve().parent.parent
TRACKS = REPO / "docs" / "instructor" / "tracks.yaml"
SCHEDULE = REPO / "docs" / "schedule.md"


class TrackError(Exception):
    """A track that names what does not exist, or does not fit its length."""


def notebooks():
    """{"NN": (path, metadata.parcours, [its `## ` headings])}, in order."""
    found = {}
    for path in sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb")):
        nb = nbformat.read(path, as_version=4)
        headings = [line[3:].strip() for cell in nb.cells if cell.cell_type == "markdown"
                    for line in cell.source.splitlines() if line.startswith("## ")]
        found[path.name[:2]] = (path, nb.metadata.parcours, headings)
    return found


def resolve(track, lessons):
    """The track's steps as (number, path, title, minutes, sections or None); checks each."""
    steps = track["steps"]
    if steps == "all":
        steps = [{"notebook": number} for number in lessons]
    resolved = []
    for step in steps:
        number = str(step["notebook"])
        if number not in lessons:
            raise TrackError(f"track {track['name']!r}: no notebook {number}")
        path, course, headings = lessons[number]
        sections = step.get("sections")
        minutes = step.get("minutes", course["minutes"])
        if sections:
            missing = [s for s in sections if s not in headings]
            if missing:
                raise TrackError(f"track {track['name']!r}, notebook {number}: no section "
                                 f"{missing} (its sections: {headings})")
            if minutes > course["minutes"]:
                raise TrackError(f"track {track['name']!r}, notebook {number}: a part of "
                                 f"{minutes} min is longer than the notebook ({course['minutes']})")
        elif "minutes" in step:
            raise TrackError(f"track {track['name']!r}, notebook {number}: minutes without "
                             "sections (a whole notebook takes its own minutes)")
        resolved.append((number, path, course["title"], minutes, sections))
    total = sum(step[3] for step in resolved)
    if "minutes" in track and total > track["minutes"]:
        raise TrackError(f"track {track['name']!r} takes {total} min, more than its "
                         f"{track['minutes']}")
    return resolved


def hours(minutes):
    return f"{minutes // 60} h {minutes % 60:02d}" if minutes >= 60 else f"{minutes} min"


def schedule():
    """The text of docs/schedule.md."""
    lessons = notebooks()
    tracks = yaml.safe_load(TRACKS.read_text())["tracks"]
    out = ["# Schedule: the course's tracks", "",
           "Written by `./course schedule` from [the tracks](instructor/tracks.yaml) and each "
           "notebook's minutes: edit those, not this file. Speaker notes for every notebook are in "
           "[instructor/notes](instructor/notes/); [instructor/README.md](instructor/README.md) "
           "says how to teach from them.", ""]
    for track in tracks:
        steps = resolve(track, lessons)
        total = sum(step[3] for step in steps)
        length = f"{hours(track['minutes'])}" if "minutes" in track else hours(total)
        out += [f"## {track['name'].capitalize()} ({length})", "", f"For {track['for']}.", "",
                "| start | notebook | what | minutes |", "| --- | --- | --- | --- |"]
        start = 0
        for number, path, title, minutes, sections in steps:
            link = f"[{number} · {title}](../notebooks/{path.name})"
            what = "; ".join(sections) if sections else "the whole notebook"
            out.append(f"| {hours(start)} | {link} | {what} | {minutes} |")
            start += minutes
        slack = track["minutes"] - total if "minutes" in track else 0
        out += ["", f"Teaching time {hours(total)}" + (f", {slack} min left for breaks and "
                                                        "questions." if slack else "."), ""]
    return "\n".join(out).rstrip() + "\n"


def main():
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--check", action="store_true", help="only check docs/schedule.md")
    args = parser.parse_args()
    try:
        text = schedule()
    except (TrackError, yaml.YAMLError, KeyError) as error:
        what = f"missing field {error}" if isinstance(error, KeyError) else error
        sys.exit(f"{TRACKS.relative_to(REPO)}: {what}")
    if args.check:
        if not SCHEDULE.exists() or SCHEDULE.read_text() != text:
            sys.exit("docs/schedule.md is not up to date: run ./course schedule")
        return
    SCHEDULE.write_text(text)
    print(f"wrote {SCHEDULE.relative_to(REPO)}")


if __name__ == "__main__":
    main()
