"""The course kernel itself: one runtime across cells, panics, several kernels, a broken crate."""

import fcntl
import os
import re
import signal
import subprocess
import sys
import time
from pathlib import Path

import pytest
from jupyter_client.kernelspec import KernelSpecManager

from conftest import REPO
from kernels import EVCXR, HOME, Kernel, kernelspec_like_course
import launch
import warm
from paths import locked_versions, parcours_home

THREADS = (
    'std::fs::read_to_string("/proc/self/status").unwrap().lines()'
    '.find(|l| l.starts_with("Threads:")).unwrap()[8..].trim().parse::<usize>().unwrap()'
)


def test_the_tests_start_this_clones_kernel():
    # The registered kernel starts the launcher of the clone set up last (see nbrun.py).
    argv = KernelSpecManager().get_kernel_spec("parcours").argv
    assert Path(argv[1]) == REPO / "kernel" / "launch.py", argv


def test_rayon_pool_is_shared_across_ten_cells():
    with Kernel() as kernel:
        counts = []
        for cell in range(10):
            outcome = kernel.run(
                f"let sum_{cell}: u64 = (0..100_000u64).into_par_iter().sum();\n"
                f"assert_eq!(sum_{cell}, 4_999_950_000);\n{THREADS}")
            assert outcome.ok, outcome.text
            counts.append(int(outcome.results[-1]["text/plain"]))
        # One pool for the whole kernel: statically linked, each cell would add a pool.
        assert len(set(counts)) == 1, f"threads per cell: {counts}"


def test_a_panicking_cell_says_so_and_the_kernel_stays_usable():
    with Kernel() as kernel:
        assert kernel.run("let kept = 41;").ok
        panicked = kernel.run('let lost = 1; panic!("the answer is not {}", kept);')
        assert panicked.panicked
        assert "This cell panicked: the answer is not 41" in panicked.text
        assert "Variables declared in this cell are lost" in panicked.text
        after = kernel.run("kept + 1")
        assert after.ok and after.results[-1]["text/plain"] == "42"
        assert not kernel.run("lost").ok  # the panicking cell's variable is gone


def test_a_failed_check_prints_what_differed():
    with Kernel() as kernel:
        outcome = kernel.run('check_slice("squares", &[0, 1, 4, 10], &[0, 1, 4, 9]);')
        assert outcome.panicked
        assert "✘ squares" in outcome.text
        assert "first at index 3" in outcome.text and "expected 9" in outcome.text


def test_two_kernels_at_once_use_separate_build_slots():
    with Kernel() as first, Kernel() as second:
        dirs = []
        for kernel in (first, second):
            outcome = kernel.run('std::env::var("EVCXR_TMPDIR").unwrap()')
            assert outcome.ok, outcome.text
            dirs.append(outcome.results[-1]["text/plain"])
            assert kernel.run("(1..=10u32).into_par_iter().sum::<u32>()").results[-1][
                "text/plain"] == "55"
        assert dirs[0] != dirs[1], dirs


def test_reexported_crates_work_under_their_own_names_with_one_copy():
    with Kernel() as kernel:
        pasted = kernel.run(
            "use crossbeam::channel::unbounded;\n"
            "#[derive(serde::Serialize)]\nstruct Point { x: u32 }\n"
            "let (sender, receiver) = unbounded();\nsender.send(42u32).unwrap();\n"
            'serde_json::to_string(&Point { x: receiver.recv().unwrap() }).unwrap()')
        assert pasted.ok, pasted.text
        assert pasted.results[-1]["text/plain"] == '"{\\"x\\":42}"', pasted.results
        imported = kernel.run(
            "use rayon::prelude::*;\nuse plotters::style::RED;\n"
            "let v: Vec<u32> = (0..4u32).into_par_iter().collect();\n"
            'serde_json::json!({"n": v.len(), "red": RED.0}).to_string()')
        assert imported.ok, imported.text
        assert imported.results[-1]["text/plain"] == '"{\\"n\\":4,\\"red\\":255}"', imported.results
        # Linked statically into each cell, rayon would start a new pool in every cell.
        counts = []
        for cell in range(5):
            outcome = kernel.run(f"let pair_{cell} = rayon::join(|| 1, || 2);\n{THREADS}")
            assert outcome.ok, outcome.text
            counts.append(int(outcome.results[-1]["text/plain"]))
        assert len(set(counts)) == 1, f"threads per cell: {counts}"


def test_a_cells_last_value_shows_as_plain_evcxr_shows_it():
    # The prelude's ShowDebug makes the first compilation succeed; the output must be evcxr's.
    with Kernel() as kernel:
        for code, shown in [("vec![1, 2]", "[1, 2]"), ('"text"', '"text"'),
                            ('println!("hi")', "()"), ("Some(1.5)", "Some(1.5)")]:
            outcome = kernel.run(code)
            assert outcome.ok and outcome.results[-1] == {"text/plain": shown}, outcome.results
        # The toolbox's types keep their own display.
        table = kernel.run('Table::new(["n"]).row(["1"])')
        assert "text/html" in table.results[-1], table.results


LOADED_COURSE_LIBRARIES = (
    'std::fs::read_to_string("/proc/self/maps").unwrap().lines()'
    '.filter_map(|line| line.split_whitespace().nth(5)).filter(|path| path.contains("libparcours"))'
    '.map(|path| path.rsplit(\'/\').next().unwrap().to_string())'
    '.collect::<std::collections::BTreeSet<_>>().into_iter().collect::<Vec<_>>().join(" ")')


def test_a_modules_first_cell_loads_its_crate_beside_the_one_toolbox():
    # As notebook 21's first cell does; the crate is built by the set-up (kernel/warm.py).
    with Kernel(cwd=REPO / "notebooks") as kernel:
        before = kernel.run(f"let first = rayon::join(|| 1, || 2);\n{THREADS}")
        loaded = kernel.run(
            ':dep parcours-cluster = { path = "../support-crate/cluster" }\n'
            "use parcours_cluster::tokio;\n"
            "let runtime = tokio::runtime::Builder::new_current_thread().build().unwrap();\n"
            "runtime.block_on(async { tokio::task::yield_now().await; 6 * 7 })")
        assert loaded.ok, loaded.text
        assert loaded.results[-1]["text/plain"] == "42"
        libraries = kernel.run(LOADED_COURSE_LIBRARIES).results[-1]["text/plain"].strip('"')
        # One toolbox: the module's crate links the one the kernel started with.
        assert sorted(libraries.split()) == ["libparcours.so", "libparcours_cluster.so"], libraries
        after = kernel.run(f"let second = rayon::join(|| 1, || 2);\n{THREADS}")
        assert after.results[-1]["text/plain"] == before.results[-1]["text/plain"]


def test_the_kernel_builds_the_versions_of_cargo_lock():
    with Kernel() as kernel:
        # A `:dep` makes evcxr resolve dependencies again; the course's versions must hold.
        added = kernel.run(':dep itoa = "1"\nitoa::Buffer::new().format(42).to_string()')
        assert added.ok, added.text
        build = kernel.run('std::env::var("EVCXR_TMPDIR").unwrap()')
        slot = Path(build.results[-1]["text/plain"].strip('"')).parent
    course = locked_versions(REPO / "Cargo.lock")
    kernel_lock = locked_versions(slot / "Cargo.lock")
    differ = {name: (version, kernel_lock[name]) for name, version in course.items()
              if name in kernel_lock and kernel_lock[name] != version}
    assert not differ, f"(Cargo.lock, kernel) versions: {differ}"
    assert kernel_lock.get("wgpu") == course["wgpu"]


@pytest.mark.parametrize("env, expected", [
    ({"PARCOURS_HOME": "/srv/course"}, "/srv/course"),
    ({"XDG_CACHE_HOME": "/srv/cache"}, "/srv/cache/parcours"),
    ({}, str(Path.home() / ".cache" / "parcours")),
])
def test_the_course_and_the_kernel_agree_on_parcours_home(env, expected, monkeypatch, tmp_path):
    monkeypatch.setenv("XDG_RUNTIME_DIR", str(tmp_path))  # else `course` makes one in the home
    for name in ("PARCOURS_HOME", "XDG_CACHE_HOME"):
        monkeypatch.delenv(name, raising=False)
    for name, value in env.items():
        monkeypatch.setenv(name, value)
    assert str(parcours_home()) == expected
    said = subprocess.run([str(REPO / "course"), "help"], capture_output=True, text=True,
                          env=dict(os.environ)).stdout
    assert f"Caches: {expected}" in said, said


def test_a_broken_support_crate_gives_a_readable_error(tmp_path):
    # A tiny crate in the support crate's place, with a type error: the launcher treats it
    # as it would the real one, without a second build of the real one's dependencies.
    crate = tmp_path / "support-crate"
    (crate / "src").mkdir(parents=True)
    (crate / "Cargo.toml").write_text(
        '[package]\nname = "parcours"\nversion = "0.0.0"\nedition = "2024"\n\n'
        '[lib]\ncrate-type = ["rlib", "dylib"]\n\n[workspace]\n')
    (crate / "src" / "lib.rs").write_text(
        "pub mod prelude {}\npub mod notebook { pub fn init() {} }\n"
        'pub fn broken() -> u32 { "not a number" }\n')
    # Caches of its own, so that the course's are left as they were.
    specs = kernelspec_like_course(tmp_path, "parcours-broken", {
        "PARCOURS_SUPPORT_CRATE": str(crate), "PARCOURS_HOME": str(tmp_path / "home"),
        "PARCOURS_EVCXR": str(EVCXR)})
    with Kernel("parcours-broken", spec_dirs=[specs]) as kernel:
        welcome = kernel.run("parcours::welcome();")
        assert welcome.panicked
        assert "The course kernel could not start with its support crate" in welcome.text
        assert "Stack backtrace" not in welcome.text
        assert re.search(r"mismatched types|expected `u32`", welcome.text), welcome.text
        assert kernel.run("1 + 1").results[-1]["text/plain"] == "2"


def test_slots_of_a_deleted_clone_are_removed(tmp_path):
    stale = HOME / "kernels" / "deleted-clone-000000000000"
    (stale / "slot-0" / "build").mkdir(parents=True, exist_ok=True)
    (stale / "support-crate-path").write_text(str(tmp_path / "gone" / "support-crate"))
    with Kernel() as kernel:
        assert kernel.run("1 + 1").ok
    assert not stale.exists()


def test_a_rebuild_empties_the_other_free_slots_so_they_seed_again(tmp_path, monkeypatch):
    monkeypatch.setattr(launch, "SLOTS", tmp_path)
    for number in range(3):
        (tmp_path / f"slot-{number}" / "build" / "target").mkdir(parents=True)
    with open(tmp_path / "slot-2.lock", "w") as held:  # a kernel runs in slot 2
        fcntl.flock(held, fcntl.LOCK_EX | fcntl.LOCK_NB)
        warm.empty_other_free_slots()
    assert [n for n in range(3) if (tmp_path / f"slot-{n}" / "build").is_dir()] == [0, 2]


def alive(pid):
    """Whether a process runs (a zombie, dead but not yet reaped, does not count)."""
    try:
        stat = open(f"/proc/{pid}/stat").read()
    except FileNotFoundError:
        return False
    return stat[stat.rindex(")") + 2] != "Z"


# As Module 2's notebooks do in their first cell (absolute: the kernel's folder may be any).
CLUSTER_CRATE = REPO / "support-crate" / "cluster"
LOAD_CLUSTER = f':dep parcours-cluster = {{ path = "{CLUSTER_CRATE}" }}'
START_PROCESSES = LOAD_CLUSTER + """
let mut cluster = parcours_cluster::cluster::LocalCluster::start(&parcours_cluster::cluster::ClusterBinaries::locate().unwrap()).unwrap();
cluster.start_workers(2, &parcours_cluster::cluster::WorkerOptions::default()).unwrap();
let pool = parcours_cluster::processes::ProcessPool::start(2).unwrap();
let pids: Vec<u32> = cluster.manager_pid().into_iter().chain(cluster.worker_pids()).chain(pool.pids()).collect();
println!("PIDS {pids:?}");
"""


def started_pids(kernel):
    outcome = kernel.run(START_PROCESSES)
    assert outcome.ok, outcome.text
    line = next(l for l in outcome.stdout.splitlines() if l.startswith("PIDS "))
    pids = [int(p) for p in line[6:-1].split(", ")]
    assert len(pids) == 5 and all(alive(p) for p in pids), pids
    return pids


def wait_until_gone(pids, seconds=10):
    deadline = time.monotonic() + seconds
    while time.monotonic() < deadline and any(alive(p) for p in pids):
        time.sleep(0.1)
    return [p for p in pids if alive(p)]


def test_processes_a_notebook_starts_die_with_its_kernel():
    # Killed, not asked: the kernel gets no chance to clean up, the children must still go.
    kernel = Kernel()
    pids = started_pids(kernel)
    kernel.stop()
    assert wait_until_gone(pids) == [], "orphans after the kernel was killed"


ORPHANING_CLIENT = """
import sys, time
sys.path.insert(0, sys.argv[1])
from kernels import Kernel
kernel = Kernel()
print("LAUNCHER", kernel.manager.provisioner.pid, flush=True)
time.sleep(600)
"""


QUEUE_CRATE = REPO / "support-crate" / "queue"
START_QUEUE = f':dep parcours-queue = {{ path = "{QUEUE_CRATE}" }}' + """
let broker = parcours_queue::broker::Broker::start().unwrap();
let queue = broker.queue("squares");
let pool = parcours_queue::pool::WorkerPool::start(&queue, 2, &Default::default()).unwrap();
let server: Option<u32> = broker.with_redis(|redis| Ok(redis.pid())).ok().flatten();
let pids: Vec<u32> = server.into_iter().chain(pool.workers().iter().filter_map(|w| w.pid())).collect();
// The cell's value, not a printed line: evcxr may forward the cell's stdout after its reply.
format!("PIDS {pids:?}")
"""


def started_by_a_cell(kernel, cell, timeout):
    """The pids a cell reports as its value (`PIDS [..]`), each checked alive."""
    outcome = kernel.run(cell, timeout=timeout)
    assert outcome.ok, outcome.text
    value = "".join(data.get("text/plain", "") for data in outcome.results)
    assert "PIDS " in value, f"the cell's value: {value!r}\n{outcome.text}"
    pids = [int(p) for p in re.findall(r"\d+", value.split("PIDS ", 1)[1])]
    assert pids and all(alive(p) for p in pids), pids
    return pids


def test_the_task_queues_broker_and_workers_die_with_the_kernel():
    kernel = Kernel()
    try:
        pids = started_by_a_cell(kernel, START_QUEUE, timeout=900)
        assert len(pids) >= 2, pids
    finally:
        # Killed, not asked, as in the test above; and always: a kernel left running would hold
        # its build slot and its broker for the rest of the run.
        kernel.stop()
    assert wait_until_gone(pids) == [], "a broker or worker outlived its kernel"


BALLISTA_CRATE = REPO / "support-crate" / "ballista"
START_BALLISTA = f':dep parcours-ballista = {{ path = "{BALLISTA_CRATE}" }}' + """
let mut cluster = parcours_ballista::cluster::BallistaCluster::start(2, 1).unwrap();
let pids = cluster.pids();
std::mem::forget(cluster); // as a kernel killed mid-lesson: nothing stops the cluster but the kernel's death
format!("PIDS {pids:?}")
"""


def test_the_ballista_scheduler_and_executors_die_with_the_kernel():
    kernel = Kernel()
    try:
        pids = started_by_a_cell(kernel, START_BALLISTA, timeout=1800)
        assert len(pids) == 3, pids
    finally:
        kernel.stop()
    assert wait_until_gone(pids) == [], "a scheduler or executor outlived its kernel"


def test_a_kernel_stops_when_the_process_that_started_it_is_killed():
    # As a Jupyter server killed with SIGKILL: it cannot stop its kernels.
    client = subprocess.Popen([sys.executable, "-c", ORPHANING_CLIENT, str(REPO / "tests")],
                              stdout=subprocess.PIPE, text=True)
    try:
        line = ""
        while not line.startswith("LAUNCHER "):
            line = client.stdout.readline()
            assert line, "the client stopped before its kernel started"
        launcher = int(line.split()[1])
        (evcxr,) = children_of(launcher)
        client.kill()
        client.wait()
        assert wait_until_gone([launcher, evcxr], seconds=15) == [], "the kernel outlived its client"
    finally:
        client.kill()


def test_processes_a_notebook_starts_die_when_the_kernel_restarts():
    with Kernel() as kernel:
        pids = started_pids(kernel)
        kernel.manager.restart_kernel(now=True)
        assert wait_until_gone(pids) == [], "orphans after a kernel restart"


def test_without_rust_on_the_path_every_cell_says_what_to_do(tmp_path):
    specs = kernelspec_like_course(tmp_path, "parcours-no-rust", {"PATH": "/usr/bin:/bin"})
    with Kernel("parcours-no-rust", spec_dirs=[specs]) as kernel:
        for _ in range(2):
            outcome = kernel.run("1 + 1", timeout=60)
            assert outcome.status == "error"
            assert "needs Rust" in outcome.text and "rustup" in outcome.text, outcome.text
        assert kernel.manager.is_alive(), "the kernel must stay up to say it, not restart"


def children_of(pid):
    return [int(p) for p in open(f"/proc/{pid}/task/{pid}/children").read().split()]


def test_a_crash_mid_session_is_reported_as_such_not_as_a_build_error(tmp_path):
    log = tmp_path / "kernel.log"
    with open(log, "w") as stderr:
        kernel = Kernel(stderr=stderr)
    try:
        assert kernel.run("1 + 1").ok
        launcher = kernel.manager.provisioner.pid
        (evcxr,) = children_of(launcher)
        os.kill(evcxr, signal.SIGABRT)
        deadline = time.monotonic() + 30
        while kernel.manager.is_alive() and time.monotonic() < deadline:
            time.sleep(0.2)
        assert not kernel.manager.is_alive(), "the launcher must exit with its evcxr"
    finally:
        kernel.stop()
    said = log.read_text()
    assert "stopped unexpectedly" in said and "variables are lost" in said, said[-2000:]
    assert "without the support crate" not in said


def test_notebooks_of_different_modules_in_turn_compile_nothing_again(tmp_path):
    """Each set of crates a notebook loads, built as evcxr builds a cell, in a copy of the
    kernel's warm build slot, one set after another, twice: the second round compiles nothing
    but the cell. A module's crate that one set builds differently from another (Module 4's
    queues once depended on Module 2's crate) is compiled again in the first cell of every
    notebook that follows one of the other module: minutes, and 0.5 GiB more (docs/architecture.md)."""
    import json
    from kernel_only_crates import copy_of_the_kernels_build, host_triple
    from warm import MODULE_DEP, module_configurations

    slot = tmp_path / "slot"
    slot.mkdir()
    launch.pin_versions(slot, launch.SUPPORT_CRATE, "parcours")
    build = slot / "build"
    copy_of_the_kernels_build(build)
    (build / "src").mkdir()
    (build / "src" / "lib.rs").write_text("")
    serde = locked_versions(launch.find_lock(launch.SUPPORT_CRATE))["serde"]
    folders = launch.module_crates(launch.SUPPORT_CRATE)
    env = dict(os.environ, CARGO_TARGET_DIR="target", CARGO_BUILD_BUILD_DIR="target",
               RUSTFLAGS="-Cprefer-dynamic")

    def compiled(crates):
        """The packages cargo compiled (not found fresh) for a cell that loaded `crates`."""
        (build / "Cargo.toml").write_text(
            '[package]\nname = "ctx"\nversion = "1.0.0"\nedition = "2024"\n\n'
            '[lib]\ncrate-type = ["cdylib"]\npath = "src/lib.rs"\n\n[dependencies]\n'
            f'serde = {{ version = "={serde}", default-features = false }}\n'
            f'parcours = {{ path = "{launch.SUPPORT_CRATE}", package = "parcours" }}\n'
            + "".join(f'{crate} = {{ path = "{folders[crate]}" }}\n' for crate in crates))
        run = subprocess.run(["cargo", "build", "--target", host_triple(), "--message-format", "json"],
                             cwd=build, env=env, capture_output=True, text=True)
        assert run.returncode == 0, run.stderr[-3000:]
        messages = [json.loads(line) for line in run.stdout.splitlines() if line.startswith("{")]
        return {m["package_id"] for m in messages if m.get("reason") == "compiler-artifact"
                and not m["fresh"] and m["target"]["name"] != "ctx"}

    sets = [[MODULE_DEP.match(line)[1] for line in lines] for lines in module_configurations()]
    for crates in sets:
        print(crates, "first round compiled:", compiled(crates) or "nothing")
    again = {" + ".join(crates): built for crates in sets if (built := compiled(crates))}
    assert not again, f"compiled again when the notebooks alternate: {again}"
