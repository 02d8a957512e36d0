"""Where the course keeps what it installs and builds, what the kernel pins, which kernel runs.

One rule for every Python part of the course (the kernel's launcher, the tests, the
benchmarks): `PARCOURS_HOME`, else `$XDG_CACHE_HOME/parcours`, else `~/.cache/parcours`. The
`course` script applies the same rule in shell, and tests/test_kernel.py checks that the two
agree.
"""

import atexit
import json
import os
import re
import shutil
import sys
import tempfile
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent
# The course kernel's name, as notebooks and `./course setup` give it.
KERNEL = "parcours"


def parcours_home():
    """The folder of the course's caches: Python environment, kernel, build slots, binaries."""
    if os.environ.get("PARCOURS_HOME"):
        return Path(os.environ["PARCOURS_HOME"])
    cache = os.environ.get("XDG_CACHE_HOME") or Path.home() / ".cache"
    return Path(cache) / "parcours"


def locked_versions(lock=REPO / "Cargo.lock"):
    """{crate: version} from a Cargo.lock (the first version, where several are locked)."""
    # Cargo writes each package as `name = "..."` then `version = "..."`; tomllib would need
    # Python 3.11, and the course supports 3.10.
    versions = {}
    for name, version in re.findall(r'^name = "([^"]+)"\nversion = "([^"]+)"',
                                    Path(lock).read_text(), re.MULTILINE):
        versions.setdefault(name, version)
    return versions


def use_this_clones_kernel():
    """Makes the kernel named `parcours` start this clone's launcher, for this process and its
    children.

    `./course setup` registers the kernel once per Python environment, so the registered one
    starts the launcher (and support crate) of whichever clone was set up last. Tests and
    benchmarks must run this clone's: a kernelspec of the same name in a folder of
    JUPYTER_PATH, which Jupyter reads before the environment's own.
    """
    from jupyter_client.kernelspec import KernelSpecManager

    registered = Path(KernelSpecManager().get_kernel_spec(KERNEL).resource_dir, "kernel.json")
    spec = json.loads(registered.read_text())
    spec["argv"] = [sys.executable, str(REPO / "kernel" / "launch.py"), "{connection_file}"]
    folder = Path(tempfile.mkdtemp(prefix="parcours-kernelspec-"))
    atexit.register(shutil.rmtree, folder, ignore_errors=True)
    (folder / "kernels" / KERNEL).mkdir(parents=True)
    (folder / "kernels" / KERNEL / "kernel.json").write_text(json.dumps(spec, indent=2))
    os.environ["JUPYTER_PATH"] = os.pathsep.join(
        p for p in (str(folder), os.environ.get("JUPYTER_PATH")) if p)
