import os
import sys
from pathlib import Path

# Small problem sizes: every notebook runs in seconds (see parcours::notebook::small).
os.environ["PARCOURS_SMALL"] = "1"
sys.path.insert(0, str(Path(__file__).parent))

REPO = Path(__file__).resolve().parent.parent

from nbrun import use_this_clones_kernel  # noqa: E402

use_this_clones_kernel()
NOTEBOOKS = sorted((REPO / "notebooks").glob("[0-9][0-9]-*.ipynb"))
