"""The Ansible lesson's server farm, for real on this machine: deploy twice (the second run
changes nothing), query the workers, survive a killed worker, stop everything. Two farms side
by side, each in its own folder with its own free ports and token, as two users (or two runs
of the notebook) on one machine. The token is never on a command line: every playbook run is
watched for it in the command lines of all processes. And the lesson's own cells, in the course
kernel: a run killed before its last cell leaves its workers running, and the next run stops
them."""

import json
import os
import secrets
import signal
import socket
import subprocess
import time
from dataclasses import dataclass
from pathlib import Path

import nbformat
import pytest

from conftest import REPO
from kernels import HOME
from nbrun import execute

ANSIBLE = REPO / "notebooks" / "ansible"
LESSON = REPO / "notebooks" / "15-server-farm-with-ansible.ipynb"
WORKER = HOME / "target" / "release" / "parcours-worker"
HOSTS = ("worker-1", "worker-2")


def free_ports(count):
    """Ports free on 127.0.0.1 now, all different (each socket is held until all are chosen)."""
    sockets = [socket.socket() for _ in range(count)]
    try:
        for held in sockets:
            held.bind(("127.0.0.1", 0))
        return [held.getsockname()[1] for held in sockets]
    finally:
        for held in sockets:
            held.close()


def command_lines_with(secret):
    """The command lines, of any process, that contain `secret`."""
    found = []
    for cmdline in Path("/proc").glob("[0-9]*/cmdline"):
        try:
            args = cmdline.read_bytes()
        except OSError:
            continue
        if secret.encode() in args:
            found.append(args.replace(b"\0", b" ").decode(errors="replace"))
    return found


def query(port, token):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(token.encode() + b"\n")
        return json.loads(connection.makefile().readline())


def mode(path):
    return path.stat().st_mode & 0o777


@dataclass
class Farm:
    """One deployment: its folder, its ports, its token, and the file of variables that holds
    them for ansible-playbook (mode 600, given as -e @file)."""
    folder: Path
    ports: dict
    token: str

    @property
    def root(self):
        return self.folder / "farm"

    @property
    def vars_file(self):
        return self.folder / "vars.json"

    @classmethod
    def create(cls, folder):
        folder.mkdir(mode=0o700)
        farm = cls(folder, dict(zip(HOSTS, free_ports(len(HOSTS)))), secrets.token_hex(16))
        variables = {"deploy_root": str(farm.root), "worker_binary": str(WORKER),
                     "worker_token": farm.token, "worker_ports": farm.ports,
                     "worker_supervisor": "worker-ctl"}
        descriptor = os.open(farm.vars_file, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
        with os.fdopen(descriptor, "w") as file:
            json.dump(variables, file)
        return farm

    def playbook(self, name, *extra):
        """Runs a playbook of the lesson; returns its recap, host -> counts. Fails if the token
        shows in any process's command line while it runs, or in its output."""
        env = dict(os.environ, ANSIBLE_NOCOLOR="1",
                   PATH=f"{HOME / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
        extra_vars = [arg for value in extra for arg in ("-e", value)]
        process = subprocess.Popen(
            ["ansible-playbook", "-i", "inventory.ini", name, "-e", f"@{self.vars_file}",
             *extra_vars],
            cwd=ANSIBLE, env=env, stdout=subprocess.PIPE, stderr=subprocess.STDOUT, text=True)
        exposed = []
        deadline = time.monotonic() + 300
        while process.poll() is None:
            exposed += command_lines_with(self.token)
            if time.monotonic() > deadline:
                process.kill()
                pytest.fail(f"ansible-playbook {name} ran for more than 300 s")
            time.sleep(0.05)
        output = process.stdout.read()
        assert process.returncode == 0, output
        assert not exposed, f"the token was on command lines: {sorted(set(exposed))}"
        assert self.token not in output, "ansible-playbook printed the token"
        recap = {}
        for line in output.split("PLAY RECAP", 1)[1].splitlines()[1:]:
            if " : " in line:
                host, counts = line.split(" : ")
                recap[host.strip()] = {k: int(v) for k, v in (p.split("=") for p in counts.split())}
        return recap


@pytest.fixture
def farms(tmp_path):
    """Makes farms in folders of their own; stops each at the end (workers are daemons)."""
    made = []

    def make():
        farm = Farm.create(tmp_path / f"farm-{len(made)}")
        made.append(farm)
        return farm

    yield make
    for farm in made:
        if farm.root.exists():
            farm.playbook("stop.yml")


@pytest.fixture
def farm(farms):
    assert WORKER.is_file(), "the worker binary is built by ./course setup"
    return farms()


def test_deploy_is_idempotent_and_workers_answer(farm):
    first = farm.playbook("site.yml")
    assert set(first) == set(HOSTS) and all(r["changed"] > 0 and r["failed"] == 0
                                             for r in first.values()), first
    second = farm.playbook("site.yml")
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in second.values()), second
    for host, port in farm.ports.items():
        assert query(port, farm.token)["worker"] == host
        assert query(port, "wrong-token") == {"error": "wrong token"}


def test_a_killed_worker_is_restarted_and_stop_leaves_nothing(farm):
    farm.playbook("site.yml")
    before = query(farm.ports["worker-1"], farm.token)["pid"]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            after = query(farm.ports["worker-1"], farm.token)["pid"]
            break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("the supervisor did not restart the killed worker")
    assert after != before
    recap = farm.playbook("stop.yml")
    assert all(r["changed"] == 1 for r in recap.values()), recap
    for port in farm.ports.values():
        with pytest.raises(OSError):
            query(port, farm.token)
    assert not any(Path(farm.root, host, "run", "worker.pid").exists() for host in HOSTS)
    pids = subprocess.run(["pgrep", "-f", str(farm.root)], capture_output=True, text=True).stdout
    assert not pids.strip(), f"processes left behind: {pids}"


def test_two_farms_side_by_side_each_with_its_folder_ports_and_token(farms):
    first, second = farms(), farms()
    assert not set(first.ports.values()) & set(second.ports.values())
    first.playbook("site.yml")
    second.playbook("site.yml")
    for farm, other in ((first, second), (second, first)):
        for host, port in farm.ports.items():
            status = query(port, farm.token)
            assert status["worker"] == host
            assert str(farm.root) in Path(f"/proc/{status['pid']}/cmdline").read_text()
            assert query(port, other.token) == {"error": "wrong token"}
    # Stopping one farm leaves the other running.
    first.playbook("stop.yml")
    for port in first.ports.values():
        with pytest.raises(OSError):
            query(port, first.token)
    for host, port in second.ports.items():
        assert query(port, second.token)["worker"] == host


def test_the_token_stays_in_private_files(farm):
    # Farm.playbook fails if the token shows on a command line while ansible-playbook runs.
    farm.playbook("site.yml")
    assert mode(farm.vars_file) == 0o600
    for host, port in farm.ports.items():
        config = farm.root / host / "etc" / "worker.json"
        assert mode(config) == 0o600 and farm.token in config.read_text()
        worker = query(port, farm.token)["pid"]
        supervisor = int((farm.root / host / "run" / "worker.pid").read_text())
        for pid in (worker, supervisor):
            assert farm.token not in Path(f"/proc/{pid}/cmdline").read_text(errors="replace")
        assert farm.token not in (farm.root / host / "log" / "worker.log").read_text()
    assert not command_lines_with(farm.token)


def lesson_part(folder, name, *cells):
    """A notebook in `folder` of the lesson's cells, named by id (`c05`), and of other sources,
    beside a link to ansible/ as the lesson has; the module's crate loaded from where it is."""
    lesson = nbformat.read(LESSON, as_version=4)
    crates = f'"{REPO / "support-crate"}/'
    sources = {cell.id: cell.source.replace('"../support-crate/', crates) for cell in lesson.cells}
    part = nbformat.v4.new_notebook(metadata=lesson.metadata)
    part.cells = [nbformat.v4.new_code_cell(sources.get(cell, cell)) for cell in cells]
    if not (folder / "ansible").exists():
        (folder / "ansible").symlink_to(ANSIBLE)
    path = folder / f"{name}.ipynb"
    nbformat.write(part, path)
    return path


def test_a_run_killed_before_its_last_cell_is_cleaned_up_by_the_next(tmp_path):
    assert WORKER.is_file(), "the worker binary is built by ./course setup"
    record = json.dumps(str(tmp_path / "record.txt"))
    first = lesson_part(tmp_path, "deploys", "c01", "c05", "c07",
                        f"std::fs::write({record}, deploy_root.path().display().to_string()).unwrap();")
    # The runner kills the kernel after the last cell: here, before the lesson's stop.
    run = execute(first, canary=False)
    assert not run.failures(), run.describe(run.failures())
    killed_run = Path((tmp_path / "record.txt").read_text())
    variables = json.loads((killed_run / "vars.json").read_text())
    ports, token = variables["worker_ports"], variables["worker_token"]
    try:
        # Workers are daemons: they outlive the kernel that deployed them.
        for host, port in ports.items():
            assert query(port, token)["worker"] == host
        second = lesson_part(
            tmp_path, "cleans", "c01", "c05",
            "let cleaned: Vec<String> = deploy_root.cleaned().iter()"
            ".map(|p| p.display().to_string()).collect();\n"
            f"std::fs::write({record}, cleaned.join(\"\\n\")).unwrap();",
            "c21")
        run = execute(second, canary=False)
        assert not run.failures(), run.describe(run.failures())
        assert str(killed_run) in (tmp_path / "record.txt").read_text().splitlines()
        for port in ports.values():
            with pytest.raises(OSError):
                query(port, token)
        assert not killed_run.exists()
    finally:
        for host in ports:
            control = killed_run / host / "bin" / "worker-ctl"
            if control.exists():
                subprocess.run([control, "stop"], capture_output=True, timeout=30)
