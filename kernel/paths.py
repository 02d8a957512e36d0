"""Where the course keeps what it installs and builds, and what the kernel pins.

One rule for every Python part of the course (the kernel's launcher, the tests, the
benchmarks): `PARCOURS_HOME`, else `$XDG_CACHE_HOME/parcours`, else `~/.cache/parcours`. The
`course` script applies the same rule in shell, and tests/test_kernel.py checks that the two
agree.
"""

import os
import re
from pathlib import Path

REPO = Path(__file__).resolve().parent.parent


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
