import os
import sys
from pathlib import Path

import pytest

# Small problem sizes: every notebook runs in seconds (see parcours::notebook::small).
os.environ["PARCOURS_SMALL"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent

from nbrun import use_this_clones_kernel  # noqa: E402

use_this_clones_kernel()
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))

# A hung test must not stall the whole run (CI stops at 90 minutes): past this limit,
# pytest-timeout fails it, printing every thread's stack, and the run goes on. The slowest
# test (notebooks 51 and 52, one after the other) takes about 7 min on 2 cores. A test may set
# its own with @pytest.mark.timeout(SECONDS).
TEST_TIMEOUT = 900


def pytest_collection_modifyitems(items):
    for item in items:
        if item.get_closest_marker("timeout") is None:
            item.add_marker(pytest.mark.timeout(TEST_TIMEOUT))
