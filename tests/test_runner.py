"""The notebook runner itself: a hung cell costs one limit, and failures are seen every time."""

import json
import re
import time
from pathlib import Path

import nbformat
import pytest

import nbrun
from conftest import REPO
from nbrun import COURSE_TYPES, KERNEL, WrongAnswer, execute, refused


def notebook(tmp_path, cells, **course):
    """Writes a notebook of code cells for the course kernel; returns its path."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": KERNEL, "display_name": "Rust (parcours)", "language": "rust"}
    nb.metadata.parcours = course
    nb.cells = [nbformat.v4.new_code_cell(source) for source in cells]
    path = tmp_path / "runner-test.ipynb"
    nbformat.write(nb, path)
    return path


def evcxr_processes():
    """The pids of running evcxr_jupyter processes (the kernel and the process running cells)."""
    pids = set()
    for entry in Path("/proc").iterdir():
        if entry.name.isdigit():
            try:
                cmdline = (entry / "cmdline").read_bytes()
                stat = (entry / "stat").read_text()
            except OSError:
                continue
            if b"evcxr_jupyter" in cmdline and stat[stat.rindex(")") + 2] != "Z":
                pids.add(int(entry.name))
    return pids


DEADLOCK = """{
    use std::sync::{Arc, Barrier, Mutex};
    let (a, b, both) = (Arc::new(Mutex::new(0)), Arc::new(Mutex::new(0)), Arc::new(Barrier::new(2)));
    let (a2, b2, both2) = (a.clone(), b.clone(), both.clone());
    let other = std::thread::spawn(move || { let _b = b2.lock().unwrap(); both2.wait(); let _a = a2.lock().unwrap(); });
    println!("taking the locks in opposite orders");
    let _a = a.lock().unwrap(); both.wait(); let _b = b.lock().unwrap();
    other.join().unwrap();
}"""


def test_a_deadlocked_cell_fails_the_notebook_within_its_limit(tmp_path):
    path = notebook(tmp_path, ["let before = 1;", DEADLOCK, 'println!("never run");'],
                    cell_timeout=15)
    already = evcxr_processes()
    started = time.monotonic()
    run = execute(path, passes=2)
    seconds = time.monotonic() - started
    assert run.aborted == "cell 1 timed out"
    cells = [c for cells in run.passes for c in cells]
    assert [c.index for c in cells] == [0, 1], "the run must stop at the hung cell"
    assert "no result after 15 s" in cells[1].failure
    assert "taking the locks in opposite orders" in cells[1].failure, "its last output is shown"
    assert seconds < 15 + 90, f"the hung cell cost {seconds:.0f} s"
    deadline = time.monotonic() + 10
    while evcxr_processes() - already and time.monotonic() < deadline:
        time.sleep(0.2)
    assert not evcxr_processes() - already, "the hung kernel was left running"


def test_a_kernel_that_never_answers_fails_at_its_limit_naming_what_it_waited_on(
        tmp_path, monkeypatch):
    # A kernel stuck while it starts (on a lock, say) would hold a run for the whole start-up
    # limit; the error must then show the kernel's processes, so the log alone tells why.
    spec = tmp_path / "kernels" / "stuck"
    spec.mkdir(parents=True)
    (spec / "kernel.json").write_text(json.dumps(
        {"argv": ["sleep", "123"], "display_name": "stuck", "language": "rust"}))
    monkeypatch.setenv("JUPYTER_PATH", str(tmp_path))
    monkeypatch.setattr(nbrun, "STARTUP_TIMEOUT", 8)
    path = notebook(tmp_path, ["1 + 1"])
    started = time.monotonic()
    with pytest.raises(RuntimeError) as error:
        execute(path, kernel="stuck")
    assert time.monotonic() - started < 8 + 30
    assert "did not get ready" in str(error.value) and "limit: 8 s" in str(error.value)
    assert re.search(r"^\d+ S \S+: sleep 123$", str(error.value), re.MULTILINE), str(error.value)


# Each cell with whether it must fail. The failing ones are the cases that reading the output
# streams misses or charges to the wrong cell.
CASES = [
    ("let kept = 41;", False),
    # A check that fails after a long computation.
    ("std::thread::sleep(std::time::Duration::from_millis(700));\n"
     "let total: u64 = (0..2_000_000u64).into_par_iter().sum();\n"
     'check("the total", &total, &0);', True),
    ("kept + 1", False),
    # A panic on a spawned thread, while the cell itself goes on.
    ('let _ = std::thread::spawn(|| panic!("on a thread")).join();\nprintln!("the cell goes on");',
     True),
    ('println!("fine");', False),
    # A cell replaces the panic hook and does not put it back...
    ("std::panic::set_hook(Box::new(|_| {}));", False),
    # ...so the panics of the next cells must be seen without it.
    ('panic!("after a replaced hook");', True),
    ("std::panic::set_hook(Box::new(|_| {}));", False),
    ('let _ = std::thread::spawn(|| panic!("on a thread, after a replaced hook")).join();', True),
    # An error returned with `?`.
    ('let number: u32 = "not a number".parse()?;', True),
    ("kept", False),
]


def test_failures_are_seen_every_time_and_charged_to_their_own_cell(tmp_path):
    path = notebook(tmp_path, [source for source, _ in CASES])
    expected = [index for index, (_, fails) in enumerate(CASES) if fails]
    # Eight passes, each a fresh chance for a late line of output to land on the wrong cell
    # (twenty took 3.7 min of a cold run).
    run = execute(path, passes=8)
    assert not run.aborted
    assert len(run.passes) == 8
    for number, cells in enumerate(run.passes):
        failed = [c.index for c in cells if c.failed]
        assert failed == expected, (
            f"pass {number + 1}: failed {failed}, expected {expected}\n" + run.describe(cells))


def test_a_chart_shown_as_debug_text_fails(tmp_path):
    moved = 'let points = vec![(1.0, 1.0), (2.0, 4.0)];\nChart::new("moved").line("s", points)'
    bound = ('let points = vec![(1.0, 1.0), (2.0, 4.0)];\n'
             'let chart = Chart::new("bound").line("s", points);\nchart')
    run = execute(notebook(tmp_path, [moved, bound]))
    first, second = run.passes[0]
    assert first.failed and "Debug text of a course type" in first.failure, first.failure
    assert not second.failed, second.failure


def test_the_runner_knows_every_displayable_course_type():
    displayable = set()
    for source in (REPO / "support-crate").glob("*/src/**/*.rs"):
        owner = None
        for line in source.read_text().splitlines():
            if found := re.match(r"impl(?:<[^>]*>)? (?:\w+ for )?(\w+)", line):
                # A blanket impl (`impl<T: Debug> ShowDebug for T`) is no course type.
                owner = None if len(found[1]) == 1 else found[1]
            if "fn evcxr_display" in line and owner:
                displayable.add(owner)
    assert displayable == set(COURSE_TYPES)


def exercise_notebook(tmp_path):
    """A notebook with one exercise in the course's pattern, and a cell after it."""
    nb = nbformat.v4.new_notebook()
    nb.metadata.kernelspec = {"name": KERNEL, "display_name": "Rust (parcours)", "language": "rust"}
    stub = nbformat.v4.new_code_cell("fn double(x: u64) -> u64 {\n    todo!()\n}")
    stub.metadata.tags = ["exercise"]
    solution = nbformat.v4.new_markdown_cell(
        "<details><summary>Solution</summary>\n\n```rust\nfn double(x: u64) -> u64 {\n"
        "    x * 2\n}\n```\n\n</details>")
    solution.metadata.tags = ["solution"]
    checks = nbformat.v4.new_code_cell('check("double 21", &double(21), &42);')
    checks.metadata.tags = ["check"]
    nb.cells = [nbformat.v4.new_code_cell("let before = 1;"), stub, solution, checks,
                nbformat.v4.new_code_cell('println!("{}", before + 1);')]
    path = tmp_path / "exercise-test.ipynb"
    nbformat.write(nb, path)
    return path


def test_solutions_replace_the_stub_and_wrong_answers_are_judged(tmp_path):
    path = exercise_notebook(tmp_path)
    solved = execute(path, "solutions")
    assert not solved.failures(), solved.describe(solved.failures())
    assert [c.role for c in solved.passes[0]][:3] == [None, "exercise", "check"]

    answers = [WrongAnswer(1, "adds", "fn double(x: u64) -> u64 { x + 2 }"),
               WrongAnswer(1, "right after all", "fn double(x: u64) -> u64 { x * 2 }"),
               WrongAnswer(1, "does not compile", "fn double(x: u64) -> u64 { x * }")]
    run = execute(path, "stubs", answers=answers)
    check = next(c for c in run.passes[0] if c.role == "check")
    assert "not yet implemented" in check.failure
    assert not run.passes[0][-1].failed, "the cell after the exercise runs on"
    problems = refused(run)
    assert len(problems) == 2, problems
    assert "'right after all': the check accepted it" in problems[0]
    assert "'does not compile': the wrong answer itself failed" in problems[1]
