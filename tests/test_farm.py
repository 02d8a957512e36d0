"""The Ansible lesson's server farm, for real on this machine: deploy twice (the second run
changes nothing), query the workers, survive a killed worker, stop everything."""

import json
import os
import signal
import socket
import subprocess
import time
from pathlib import Path

import pytest

from conftest import REPO
from kernels import HOME

ANSIBLE = REPO / "notebooks" / "ansible"
WORKER = HOME / "target" / "release" / "parcours-worker"
PORTS = {"worker-1": 7101, "worker-2": 7102}
TOKEN = "test-token-0123456789"


def playbook(name, deploy_root, *extra):
    env = dict(os.environ, ANSIBLE_NOCOLOR="1",
               PATH=f"{HOME / 'venv' / 'bin'}{os.pathsep}{os.environ['PATH']}")
    result = subprocess.run(
        ["ansible-playbook", "-i", "inventory.ini", name, "-e", f"deploy_root={deploy_root}",
         "-e", f"worker_binary={WORKER}", "-e", f"worker_token={TOKEN}", *extra],
        cwd=ANSIBLE, env=env, capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    recap = {}
    for line in result.stdout.split("PLAY RECAP", 1)[1].splitlines()[1:]:
        if " : " in line:
            host, counts = line.split(" : ")
            recap[host.strip()] = {k: int(v) for k, v in (p.split("=") for p in counts.split())}
    return recap


def query(port, token):
    with socket.create_connection(("127.0.0.1", port), timeout=5) as connection:
        connection.sendall(token.encode() + b"\n")
        return json.loads(connection.makefile().readline())


@pytest.fixture
def farm(tmp_path):
    root = tmp_path / "farm"
    yield root
    if root.exists():
        playbook("stop.yml", root)


def test_deploy_is_idempotent_and_workers_answer(farm):
    assert WORKER.is_file(), "the worker binary is built by ./course setup"
    first = playbook("site.yml", farm)
    assert set(first) == set(PORTS) and all(r["changed"] > 0 and r["failed"] == 0
                                             for r in first.values()), first
    second = playbook("site.yml", farm)
    assert all(r["changed"] == 0 and r["failed"] == 0 for r in second.values()), second
    for host, port in PORTS.items():
        assert query(port, TOKEN)["worker"] == host
        assert query(port, "wrong-token") == {"error": "wrong token"}


def test_a_killed_worker_is_restarted_and_stop_leaves_nothing(farm):
    playbook("site.yml", farm)
    before = query(PORTS["worker-1"], TOKEN)["pid"]
    os.kill(before, signal.SIGKILL)
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            after = query(PORTS["worker-1"], TOKEN)["pid"]
            break
        except OSError:
            time.sleep(0.2)
    else:
        pytest.fail("the supervisor did not restart the killed worker")
    assert after != before
    recap = playbook("stop.yml", farm)
    assert all(r["changed"] == 1 for r in recap.values()), recap
    for port in PORTS.values():
        with pytest.raises(OSError):
            query(port, TOKEN)
    assert not any(Path(farm, host, "run", "worker.pid").exists() for host in PORTS)
    pids = subprocess.run(["pgrep", "-f", str(farm)], capture_output=True, text=True).stdout
    assert not pids.strip(), f"processes left behind: {pids}"
