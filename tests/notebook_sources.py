"""The lessons' text sources: every notebook `notebooks/NN-name.ipynb` is paired with
`notebooks/source/NN-name.md`, the same lesson in MyST Markdown, read and written by jupytext.
The .md is the source of truth, the file to review and edit; the .ipynb is what students open.

A pair holds the same cells (type, source, tags and any other cell metadata, such as
`jupyter.source_hidden` on solutions) and the same notebook metadata (`parcours`, the
kernelspec, jupytext's pairing). The .ipynb adds only what a text file does not carry: cell ids
(a cell keeps its id while its source is unchanged; a new cell gets a new one) and
`language_info` (written by the kernel). Neither holds outputs.

Every notebook's metadata names its pair (`jupytext.formats`), so JupyterLab with jupytext
installed (it is in kernel/requirements.txt) saves both files at once.

Command line, from the repository root:
  python tests/notebook_sources.py to-notebook [FILE...]   after editing a .md: rewrite its .ipynb
  python tests/notebook_sources.py to-source [FILE...]     after editing an .ipynb outside
                                                           JupyterLab: rewrite its .md
  python tests/notebook_sources.py check                   list the pairs that differ (exit 1)
FILE is a notebook or its source; without one, every lesson. Both writing commands leave each
pair identical and in the form jupytext writes, so running one twice changes nothing.
"""

import argparse
import copy
import sys
from pathlib import Path

import jupytext
import nbformat
from jupytext.combine import map_outputs_to_inputs

NOTEBOOKS = Path(__file__).resolve().parent.parent / "notebooks"
SOURCE_DIR = "source"
TEXT_FORMAT = "md:myst"
# Every notebook's `jupytext` metadata. It pairs the notebook with source/NAME.md; keeps the
# course's metadata in the text; leaves jupytext's version out of it, so that a new jupytext
# does not touch every source; and marks code cells as Rust (the kernel's `language_info` spells
# the key jupytext reads `pygment_lexer`, so jupytext would not know).
PAIRING = {
    "formats": f"ipynb,{SOURCE_DIR}//{TEXT_FORMAT}",
    "notebook_metadata_filter": "parcours,-jupytext.text_representation.jupytext_version",
    "default_lexer": "rust",
}
# Notebook metadata that only the .ipynb holds: the kernel writes it when the notebook runs.
NOTEBOOK_ONLY_METADATA = ("language_info",)
# Cell metadata that JupyterLab writes for its own display and jupytext keeps out of the text:
# `to-source` drops it.
DISPLAY_CELL_METADATA = ("autoscroll", "collapsed", "scrolled", "trusted", "execution", "ExecuteTime")
COMMAND = "./course sources"
SHOWN_DIFFERENCES = 6


class SourceError(Exception):
    """A pair that cannot be written as asked; the message says why and what to do."""


def source_of(notebook: Path) -> Path:
    """notebooks/NN-name.ipynb -> notebooks/source/NN-name.md"""
    return notebook.parent / SOURCE_DIR / f"{notebook.stem}.md"


def notebook_of(source: Path) -> Path:
    """notebooks/source/NN-name.md -> notebooks/NN-name.ipynb"""
    return source.parent.parent / f"{source.stem}.ipynb"


def source_text(nb) -> str:
    """The lesson as MyST Markdown, exactly as jupytext writes it (and JupyterLab saves it)."""
    return jupytext.writes(nb, TEXT_FORMAT)


def notebook_text(nb) -> str:
    """The notebook's JSON as Jupyter writes it."""
    text = nbformat.writes(nb)
    return text if text.endswith("\n") else text + "\n"


def notebook_from_source(text: str, previous=None):
    """The notebook a source describes, without outputs, paired the course's way. `previous`,
    the notebook as it was, lends its cell ids to the cells it still has, and its
    `language_info`."""
    nb = jupytext.reads(text, TEXT_FORMAT)
    pairing = nb.metadata.setdefault("jupytext", {})
    pairing.pop("text_representation", None)
    pairing.update(PAIRING)
    for cell in nb.cells:
        if cell.cell_type == "code":
            cell.outputs, cell.execution_count = [], None
    if previous is not None:
        for key in NOTEBOOK_ONLY_METADATA:
            if key in previous.metadata:
                nb.metadata[key] = copy.deepcopy(previous.metadata[key])
        # jupytext's own matching, as when JupyterLab opens an edited source: by type and source.
        for cell, match in zip(nb.cells, map_outputs_to_inputs(nb.cells, previous.cells)):
            if match is not None and "id" in previous.cells[match]:
                cell.id = previous.cells[match].id
    nbformat.validate(nb)
    return nb


def differences(notebook, from_source) -> list[str]:
    """What differs between a notebook and the notebook its source describes, in what the course
    relies on: the notebook metadata but `language_info`, and each cell's type, source, metadata
    and attachments. Cell ids, outputs and execution counts are not compared."""

    def shown(value):
        text = repr(value)
        return text if len(text) <= 80 else text[:77] + "..."

    found = []
    ours = {k: v for k, v in notebook.metadata.items() if k not in NOTEBOOK_ONLY_METADATA}
    theirs = {k: v for k, v in from_source.metadata.items() if k not in NOTEBOOK_ONLY_METADATA}
    for key in sorted(set(ours) | set(theirs)):
        if ours.get(key) != theirs.get(key):
            found.append(f"notebook metadata `{key}`: .ipynb {shown(ours.get(key))}, "
                         f".md {shown(theirs.get(key))}")
    if len(notebook.cells) != len(from_source.cells):
        found.append(f"{len(notebook.cells)} cells in the .ipynb, {len(from_source.cells)} in the .md")
    for index, (cell, other) in enumerate(zip(notebook.cells, from_source.cells)):
        if cell.cell_type != other.cell_type:
            found.append(f"cell {index}: a {cell.cell_type} cell in the .ipynb, {other.cell_type} in the .md")
        if cell.source != other.source:
            lines, other_lines = cell.source.splitlines(), other.source.splitlines()
            first = next(i for i, (line, other_line) in enumerate(
                zip(lines + [None], other_lines + [None])) if line != other_line)

            def line(of):
                return shown(of[first]) if first < len(of) else "(no line)"

            found.append(f"cell {index}, line {first + 1}: .ipynb {line(lines)}, .md {line(other_lines)}")
        if cell.metadata != other.metadata:
            found.append(f"cell {index} metadata: .ipynb {shown(dict(cell.metadata))}, "
                         f".md {shown(dict(other.metadata))}")
        if cell.get("attachments") != other.get("attachments"):
            found.append(f"cell {index} has attachments, which a text source cannot hold: put the "
                         "file in notebooks/data/ and link to it")
    return found


def pair_problems(notebook: Path, source: Path) -> list[str]:
    """Why a notebook and its source are out of step; empty when they are not."""
    text = source.read_text(encoding="utf-8")
    try:
        current = nbformat.read(notebook, as_version=4)
        from_source = notebook_from_source(text, current)
    except Exception as error:  # a source or notebook that does not parse: say which and why
        return [f"cannot read the pair: {error}"]
    problems = differences(current, from_source)
    if len(problems) > SHOWN_DIFFERENCES:
        problems[SHOWN_DIFFERENCES:] = [f"and {len(problems) - SHOWN_DIFFERENCES} more"]
    if not problems and source_text(from_source) != text:
        problems.append(".md is not in the form jupytext writes: `to-notebook` rewrites it")
    return problems


def check(directory: Path = NOTEBOOKS) -> list[str]:
    """Every problem with the lessons in `directory` and their sources, one line each, with the
    command that fixes it; empty when every notebook matches its source."""
    notebooks = sorted(directory.glob("[0-9][0-9]-*.ipynb"))
    sources = sorted((directory / SOURCE_DIR).glob("*.md"))
    problems = []
    for source in sources:
        if not notebook_of(source).exists():
            problems.append(f"{shown_path(source)} has no notebook: `{COMMAND} to-notebook "
                            f"{shown_path(source)}` writes it, or delete the source")
    for notebook in notebooks:
        source = source_of(notebook)
        if not source.exists():
            problems.append(f"{shown_path(notebook)} has no source: `{COMMAND} to-source "
                            f"{shown_path(notebook)}` writes it")
            continue
        found = pair_problems(notebook, source)
        if found:
            problems.append(
                f"{shown_path(notebook)} and {shown_path(source)} differ (edited the .md? "
                f"`{COMMAND} to-notebook {shown_path(source)}`; edited the .ipynb? "
                f"`{COMMAND} to-source {shown_path(notebook)}`):"
                + "".join(f"\n    {line}" for line in found))
    return problems


def write_if_changed(path: Path, text: str) -> bool:
    if path.exists() and path.read_text(encoding="utf-8") == text:
        return False
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_text(text, encoding="utf-8")
    return True


def to_notebook(source: Path) -> list[Path]:
    """Writes the notebook from its source, keeping the cell ids of unchanged cells, and
    rewrites the source in jupytext's form if it is not. Returns the files it changed."""
    notebook = notebook_of(source)
    previous = nbformat.read(notebook, as_version=4) if notebook.exists() else None
    try:
        nb = notebook_from_source(source.read_text(encoding="utf-8"), previous)
    except Exception as error:
        raise SourceError(f"{shown_path(source)}: {error}") from error
    changed = [notebook] if write_if_changed(notebook, notebook_text(nb)) else []
    if write_if_changed(source, source_text(nb)):
        changed.append(source)
    return changed


def to_source(notebook: Path) -> list[Path]:
    """Writes the source from its notebook, then the notebook from that source (without outputs,
    with the course's pairing). Refuses, changing nothing, if the notebook holds something a
    source cannot. Returns the files it changed."""
    nb = nbformat.read(notebook, as_version=4)
    for cell in nb.cells:
        for key in DISPLAY_CELL_METADATA:
            cell.metadata.pop(key, None)
    nb.metadata["jupytext"] = {**nb.metadata.get("jupytext", {}), **PAIRING}
    text = source_text(nb)
    from_source = notebook_from_source(text, nb)
    lost = differences(nb, from_source)
    if lost:
        raise SourceError(f"{shown_path(notebook)} cannot be written as text:\n    " + "\n    ".join(lost))
    source = source_of(notebook)
    changed = [source] if write_if_changed(source, text) else []
    if write_if_changed(notebook, notebook_text(from_source)):
        changed.append(notebook)
    return changed


def shown_path(path: Path) -> str:
    try:
        return str(path.resolve().relative_to(Path.cwd()))
    except ValueError:
        return str(path)


def main(argv=None) -> int:
    parser = argparse.ArgumentParser(
        description="Keep every notebook and its text source (notebooks/source/*.md) in step.",
        epilog="The .md is the source of truth: edit it, run to-notebook, commit both.")
    commands = parser.add_subparsers(dest="command", required=True)
    for name, help_text in [
        ("to-notebook", "write each notebook from its source (after editing a .md)"),
        ("to-source", "write each source from its notebook (after editing an .ipynb outside JupyterLab)"),
    ]:
        command = commands.add_parser(name, help=help_text)
        command.add_argument("files", nargs="*", type=Path,
                             help="notebooks or sources (default: every lesson)")
    commands.add_parser("check", help="list the notebooks that differ from their sources")
    args = parser.parse_args(argv)

    if args.command == "check":
        problems = check()
        for problem in problems:
            print(problem)
        if not problems:
            print("every notebook matches its source")
        return 1 if problems else 0

    if args.command == "to-notebook":
        files = ([source_of(f) if f.suffix == ".ipynb" else f for f in args.files]
                 or sorted((NOTEBOOKS / SOURCE_DIR).glob("*.md")))
        write = to_notebook
    else:
        files = ([notebook_of(f) if f.suffix == ".md" else f for f in args.files]
                 or sorted(NOTEBOOKS.glob("[0-9][0-9]-*.ipynb")))
        write = to_source
    failed = False
    changed = []
    for path in files:
        if not path.exists():
            print(f"{shown_path(path)} does not exist", file=sys.stderr)
            failed = True
            continue
        try:
            changed += write(path)
        except SourceError as error:
            print(error, file=sys.stderr)
            failed = True
    for path in changed:
        print(f"wrote {shown_path(path)}")
    if not changed and not failed:
        print("nothing to write: every pair is in step")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
