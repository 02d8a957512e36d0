"""The course's set-up on a bare machine: `./course help` and `./course check`; what a missing
system tool makes the set-up say (at the start, before anything is built); and `./course open`
serving JupyterLab on 127.0.0.1 behind a token, as root or not, then stopping with nothing left
running."""

import fcntl
import json
import os
import re
import shutil
import signal
import socket
import subprocess
import tempfile
import time
import urllib.error
import urllib.request
from pathlib import Path

import pytest

from conftest import REPO

COURSE = REPO / "course"
IS_ROOT = os.geteuid() == 0
NOBODY = 65534
# The set-up that `./course open` runs first may build (the course's binaries, the kernel's build
# slot) when this clone is new to the caches.
OPEN_TIMEOUT = 1800


def course(*args, env=None, user=None, timeout=120):
    command = [str(COURSE), *args]
    if user is not None:
        command = ["setpriv", f"--reuid={user}", f"--regid={user}", "--clear-groups", *command]
    return subprocess.run(command, env=env, capture_output=True, text=True, timeout=timeout,
                          cwd=REPO)


def path_without(folder, *hidden):
    """A PATH of one folder that links every program of this PATH but the `hidden` ones."""
    folder.mkdir()
    for directory in os.environ["PATH"].split(os.pathsep):
        if not os.path.isdir(directory):
            continue
        for program in os.listdir(directory):
            link = folder / program
            if program not in hidden and not link.exists() and not link.is_symlink():
                link.symlink_to(Path(directory) / program)
    return str(folder)


def install_line(packages, root=IS_ROOT):
    """A pattern for the line `./course` prints to install what is missing, `packages` among."""
    if shutil.which("apt-get"):
        return rf"(?m)^    {'' if root else 'sudo '}apt-get install .*\b{packages}\b"
    return rf"Debian packages: .*\b{packages}\b"


def test_help_lists_every_command():
    result = course("help")
    assert result.returncode == 0, result.stderr
    for command in ("open", "update", "test", "setup", "check", "system", "tools", "clean", "sources",
                    "bench", "progress", "help"):
        assert re.search(rf"^  {command}\b", result.stdout, re.M), f"{command}:\n{result.stdout}"
    unknown = course("frobnicate")
    assert unknown.returncode != 0
    assert "unknown command 'frobnicate'" in unknown.stderr


def test_check_names_a_missing_c_toolchain_and_the_line_that_installs_it(tmp_path):
    env = dict(os.environ, PATH=path_without(tmp_path / "bin", "cc"))
    result = course("check", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"missing\s+a C toolchain \(cc\): Rust links", result.stdout), result.stdout
    assert "(required: ./course stops until it is there)" in result.stdout
    assert re.search(install_line("gcc libc6-dev"), result.stdout), result.stdout
    assert "ok       a C toolchain" not in result.stdout


def test_check_names_a_missing_vulkan_driver_and_the_lessons_that_need_it():
    # The Vulkan loader reads its drivers from VK_DRIVER_FILES when set: none is found here.
    env = dict(os.environ, VK_DRIVER_FILES="/nonexistent/driver.json")
    result = course("check", env=env)
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"missing\s+a Vulkan loader and driver: the GPU lessons \(Module 3",
                     result.stdout), result.stdout
    assert "(./course goes on without it, but what is named above fails)" in result.stdout
    assert re.search(install_line("libvulkan1 mesa-vulkan-drivers"), result.stdout), result.stdout


def test_check_names_a_locale_that_ansible_refuses():
    result = course("check", env=dict(os.environ, LC_ALL="C"))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"missing\s+a UTF-8 locale: Ansible \(the server-farm lesson",
                     result.stdout), result.stdout


def test_check_names_a_rustc_that_does_not_run(tmp_path):
    """rustup's proxies are on the PATH but no toolchain is chosen: say so, not "Rust 0"."""
    path = path_without(tmp_path / "bin", "rustc", "cargo")
    for tool in ("rustc", "cargo"):
        fake = tmp_path / "bin" / tool
        fake.write_text("#!/bin/sh\necho 'error: rustup could not choose a version' >&2\nexit 1\n")
        fake.chmod(0o755)
    result = course("check", env=dict(os.environ, PATH=path))
    assert result.returncode == 1, result.stdout + result.stderr
    assert re.search(r"missing\s+Rust: rustc is on the PATH but does not run \(error: rustup "
                     r"could not choose a version\)\. With rustup, choose a toolchain: "
                     r"rustup default stable", result.stdout), result.stdout


def test_check_passes_where_the_course_has_what_it_needs():
    result = course("check")
    if result.returncode != 0:
        pytest.skip(f"this machine lacks something the course needs:\n{result.stdout}")
    assert "the course has" in result.stdout
    for need in ("Rust", "Python", "a C toolchain (cc)", "kill and pgrep",
                 "a Vulkan loader and driver"):
        assert re.search(rf"ok\s+{re.escape(need)}", result.stdout), result.stdout


@pytest.fixture
def shared_tmp():
    """A temporary folder that every user may enter (pytest's tmp_path is private to its user)."""
    folder = Path(tempfile.mkdtemp(prefix="parcours-setup-"))
    folder.chmod(0o755)
    yield folder
    shutil.rmtree(folder, ignore_errors=True)


def test_a_plain_user_is_told_at_the_start_what_is_missing_and_nothing_is_built(shared_tmp):
    """Without a C toolchain the set-up stops before building anything, and says what to
    install with sudo. As root, the set-up runs as the user `nobody` for this."""
    caches = shared_tmp / "caches"
    caches.mkdir()
    user = None
    if IS_ROOT:
        if not shutil.which("setpriv"):
            pytest.skip("setpriv (util-linux) is needed to run the set-up as a plain user")
        user = NOBODY
        os.chown(caches, NOBODY, NOBODY)
        if course("help", user=user).returncode != 0:
            pytest.skip(f"the user nobody cannot run {COURSE}")
    env = dict(os.environ, PARCOURS_HOME=str(caches / "parcours"),
               PATH=path_without(shared_tmp / "bin", "cc"))
    result = course("setup", env=env, user=user)
    assert result.returncode == 1, result.stdout + result.stderr
    assert result.stdout.startswith("==> missing from this system:"), result.stdout
    assert re.search(r"missing\s+a C toolchain \(cc\)", result.stdout), result.stdout
    assert re.search(install_line("gcc libc6-dev", root=False), result.stdout), result.stdout
    assert "install what is missing above, then run this again" in result.stderr
    assert not (caches / "parcours").exists(), "the set-up built something before it stopped"


def free_port():
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


def listening_addresses(port):
    """The local addresses of the sockets listening on `port` (IPv4 and IPv6)."""
    addresses = []
    for table in ("/proc/net/tcp", "/proc/net/tcp6"):
        if not os.path.exists(table):
            continue
        for line in Path(table).read_text().splitlines()[1:]:
            local, state = line.split()[1], line.split()[3]
            address, hex_port = local.split(":")
            if state == "0A" and int(hex_port, 16) == port:
                addresses.append(address)
    return addresses


def http(url, token=None, method="GET", body=None):
    """(status, headers, body) of a request that follows no redirect."""
    class NoRedirect(urllib.request.HTTPRedirectHandler):
        def redirect_request(self, *args, **kwargs):
            return None

    request = urllib.request.Request(url, method=method, data=body)
    if token:
        request.add_header("Authorization", f"token {token}")
    try:
        with urllib.request.build_opener(NoRedirect).open(request, timeout=30) as response:
            return response.status, response.headers, response.read().decode()
    except urllib.error.HTTPError as error:
        return error.code, error.headers, error.read().decode()


def processes_started_by(group, servers):
    """The live processes of the process group `group`, and the kernels started by any of
    `servers`: the pids seen in that group, to which this adds. jupyter_client gives each kernel
    a session of its own and records its server's pid in the kernel's JPY_PARENT_PID."""
    table = {}
    for entry in Path("/proc").iterdir():
        if not entry.name.isdigit():
            continue
        try:
            fields = (entry / "stat").read_text().rsplit(")", 1)[1].split()
            environ = (entry / "environ").read_bytes().split(b"\0")
            command = (entry / "cmdline").read_bytes().replace(b"\0", b" ")[:160]
        except OSError:
            continue
        if fields[0] != "Z":
            table[int(entry.name)] = (int(fields[2]), environ, command)
    servers.update(pid for pid, (pgid, _, _) in table.items() if pgid == group)
    parents = {f"JPY_PARENT_PID={pid}".encode() for pid in servers}
    return sorted(f"{pid}: {command!r}" for pid, (pgid, environ, command) in table.items()
                  if pgid == group or parents.intersection(environ))


def wait_for(predicate, timeout, step=0.5):
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        value = predicate()
        if value:
            return value
        time.sleep(step)
    return predicate()


STOPS = {"ctrl-c": signal.SIGINT, "closed-terminal": signal.SIGHUP}


def as_in_a_terminal():
    """Ctrl-C and a closing terminal reach a program started from a terminal. A test run started
    in the background (`nohup`, `cmd &` from a script) ignores them, and a shell that starts
    with a signal ignored cannot trap it: give the server the dispositions a terminal gives."""
    for number in (signal.SIGINT, signal.SIGHUP):
        signal.signal(number, signal.SIG_DFL)


@pytest.mark.parametrize("stop", ["file-shut-down", *STOPS])
def test_open_serves_jupyterlab_on_loopback_behind_a_token_and_stops_cleanly(tmp_path, stop):
    """`stop`: JupyterLab's File > Shut Down, or a signal to the terminal's process group:
    Ctrl-C, or the terminal closing. Each must stop the server and the kernels it started."""
    port = free_port()
    log_path = tmp_path / "open.log"
    work = tmp_path / "work"
    env = dict(os.environ, CI="true", PARCOURS_WORKSPACE=str(work))
    with open(log_path, "w") as log:
        server = subprocess.Popen(
            [str(COURSE), "open", f"--ServerApp.port={port}", "--ServerApp.port_retries=0"],
            cwd=REPO, env=env, stdout=log, stderr=subprocess.STDOUT, stdin=subprocess.DEVNULL,
            start_new_session=True, preexec_fn=as_in_a_terminal)
    url = re.compile(rf"http://127\.0\.0\.1:{port}/\S*\?token=(\w+)")
    servers = set()
    try:
        def started():
            if server.poll() is not None:
                pytest.fail(f"./course open exited ({server.returncode}):\n{log_path.read_text()}")
            return url.search(log_path.read_text())

        found = wait_for(started, OPEN_TIMEOUT, step=1)
        output = log_path.read_text()
        assert found, f"no link with a token after {OPEN_TIMEOUT} s:\n{output}"
        token = found.group(1)
        base = f"http://127.0.0.1:{port}"

        # As root, JupyterLab runs only with --allow-root, and the course says why it is risky.
        assert ("runs as root" in output) == IS_ROOT, output
        if IS_ROOT:
            assert "change the whole system" in output and "as a plain user" in output
        # CI=true adds --no-browser: no browser is looked for on this headless machine.
        assert "No web browser found" not in output, output

        # Listens on the loopback interface only.
        addresses = listening_addresses(port)
        assert addresses == ["0100007F"], f"listening on {addresses} (hex), not 127.0.0.1 only"

        status, _, body = http(f"{base}/lab?token={token}")
        assert status == 200 and "JupyterLab" in body, (status, body[:300])
        # It serves the student's own copies of the notebooks, made at this first open.
        assert f"your notebooks are in {work / 'notebooks'}" in output, output
        status, _, body = http(f"{base}/api/contents/notebooks?content=1", token)
        served = {entry["name"] for entry in json.loads(body)["content"]}
        assert status == 200 and "00-how-this-course-works.ipynb" in served, (status, served)
        assert (work / "notebooks" / "00-how-this-course-works.ipynb").is_file()
        status, headers, _ = http(f"{base}/lab")
        assert status == 302 and "/login" in headers["Location"], (status, dict(headers))
        status, _, _ = http(f"{base}/api/status")
        assert status == 403, status
        status, _, _ = http(f"{base}/api/status?token=not-the-token")
        assert status == 403, status

        # A course kernel, then stop: the server and everything it started stop.
        status, _, body = http(f"{base}/api/kernels", token, "POST",
                               json.dumps({"name": "parcours"}).encode())
        assert status == 201, (status, body)
        kernel = f"kernel-{json.loads(body)['id']}"
        assert wait_for(lambda: any(kernel in p for p in processes_started_by(server.pid, servers)),
                        60), f"the kernel did not start: {processes_started_by(server.pid, servers)}"
        if stop == "file-shut-down":
            status, _, _ = http(f"{base}/api/shutdown", token, "POST", b"")
            assert status in (200, 204), status
        else:
            os.killpg(server.pid, STOPS[stop])
        assert server.wait(timeout=60) == 0, log_path.read_text()
        stopped = wait_for(lambda: not processes_started_by(server.pid, servers), 30)
        assert stopped, f"still running after the stop: {processes_started_by(server.pid, servers)}"
        assert listening_addresses(port) == []
    finally:
        if server.poll() is None:
            os.killpg(server.pid, signal.SIGKILL)
            server.wait()
        for process in processes_started_by(server.pid, servers):
            os.kill(int(process.split(":")[0]), signal.SIGTERM)


def test_clean_deletes_the_builds_but_not_while_a_kernel_runs(tmp_path):
    home = tmp_path / "home"
    for folder in ("kernels/clone-0123/slot-0/build/target", "target/release", "tools/bin", "venv"):
        (home / folder).mkdir(parents=True)
    lock = home / "kernels" / "clone-0123" / "slot-0.lock"
    lock.touch()
    env = dict(os.environ, PARCOURS_HOME=str(home))
    # A running kernel holds its slot's lock (kernel/launch.py): nothing is deleted.
    with open(lock, "w") as held:
        fcntl.flock(held, fcntl.LOCK_EX)
        refused = course("clean", env=env)
        assert refused.returncode != 0 and "a course kernel is running" in refused.stderr
        assert (home / "kernels" / "clone-0123" / "slot-0" / "build").is_dir()
    cleaned = course("clean", env=env)
    assert cleaned.returncode == 0, cleaned.stderr
    assert not (home / "kernels").exists() and not (home / "target").exists()
    assert (home / "tools" / "bin").is_dir() and (home / "venv").is_dir()
    assert "nothing to clean" in course("clean", env=env).stdout
