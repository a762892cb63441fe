"""Where things are, one setting each, so tests and benchmarks agree on them."""

import os
from pathlib import Path

ROOT = Path(__file__).resolve().parents[1]
# The shared labeled faces: one setting, defaulting to the folder beside the checkout.
FACES_DIR = Path(os.environ.get("FACES_DIR", ROOT.parent / "shared" / "faces")).resolve()
# Service logs, screenshots and figures: kept after a run, for reading what happened.
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", ROOT / "artifacts")).resolve()
