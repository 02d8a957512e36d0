"""The Binder image (binder/Dockerfile): repo2docker picks it, and it runs the set-up that CI
runs. No Docker engine runs here, so the image itself is not built: repo2docker's `--no-build`
reads the repository as mybinder.org would, and the Dockerfile's steps are checked against the
course's own commands (docs/binder.md)."""

import re
import subprocess
import sys
from pathlib import Path

from conftest import REPO

DOCKERFILE = REPO / "binder" / "Dockerfile"
REPO2DOCKER = Path(sys.executable).parent / "repo2docker"


def steps():
    """The Dockerfile's instructions, continuation lines joined, comments left out."""
    text = re.sub(r"\\\n", " ", DOCKERFILE.read_text())
    return [line.strip() for line in text.splitlines()
            if line.strip() and not line.lstrip().startswith("#")]


def test_repo2docker_builds_the_course_from_binder_dockerfile():
    result = subprocess.run([str(REPO2DOCKER), "--no-build", "--no-run", "--debug", str(REPO)],
                            capture_output=True, text=True, timeout=300)
    assert result.returncode == 0, result.stdout + result.stderr
    # With a Dockerfile, repo2docker prints it as the one it would build, and nothing of its own.
    printed = result.stdout + result.stderr
    assert DOCKERFILE.read_text().strip() in printed, printed[-2000:]


def test_the_image_runs_the_courses_own_set_up_as_the_notebook_user_in_small_mode():
    lines = steps()
    user = next(i for i, line in enumerate(lines) if line.startswith("USER "))
    # The root layer installs the packages `./course setup` checks for, from its own list.
    assert any("./course system" in line or "/course system" in line for line in lines[:user])
    assert "PARCOURS_SMALL=1" in " ".join(lines)
    after = lines[user:]
    copy_all = next(i for i, line in enumerate(after) if re.match(r"COPY .*\s\.\s+\.$", line))
    # The tools come before the lessons are copied: an edit to a lesson does not rebuild them.
    assert any("./course tools" in line for line in after[:copy_all])
    assert any("./course setup" in line for line in after[copy_all:])
    # One notebook runs at build time, so that the first cell a student runs is warm.
    assert any("tests/nbrun.py notebooks/00-" in line for line in after[copy_all:])


def test_rust_is_pinned_in_binder_only_and_is_recent_enough_for_the_kernel():
    pinned = (REPO / "binder" / "rust-toolchain").read_text().strip()
    assert re.fullmatch(r"\d+\.\d+\.\d+", pinned), pinned
    wanted = re.search(r"^RUST_MIN=(\S+)", (REPO / "course").read_text(), re.M)[1]
    assert tuple(map(int, pinned.split("."))) >= tuple(map(int, wanted.split("."))), \
        f"binder pins Rust {pinned}, the kernel needs {wanted}"
    # A repository-wide pin would bind every user and CI, which cannot fetch toolchains.
    assert not (REPO / "rust-toolchain").exists() and not (REPO / "rust-toolchain.toml").exists()


def test_the_readme_links_binder_from_one_place():
    readme = (REPO / "README.md").read_text()
    definitions = re.findall(r"^\[binder\]: (https://mybinder\.org/v2/\S+)$", readme, re.M)
    assert len(definitions) == 1, "one `[binder]: https://mybinder.org/v2/...` line"
    assert "mybinder.org/v2" not in readme.replace(definitions[0], ""), \
        "the Binder address appears once; the badge and links use [binder]"
    assert "][binder]" in readme, "a badge or link that uses [binder]"
