"""`python -m bench.accuracy` on the shared labeled faces, as a person would run it.

One run (with --pairs, --json and --png) serves every test here: encoding the photos is the
slow part, and the machines are shared.
"""

import json
import re
import subprocess
import sys
from dataclasses import dataclass
from pathlib import Path
from typing import Any

import pytest

from harness.paths import ROOT
from services.faces.settings import DEFAULT_TOLERANCE

pytestmark = pytest.mark.faces

# Our layout (<name>/<idx>.jpg): six pairs of one person, six of two different people (the
# closest two people of the set among them), and one pair whose second photo does not exist.
PAIRS = """6
barack_obama 1 2
guido_van_rossum 1 3
steve_wozniak 2 4
paul_allen 1 3
kit_harington 1 2
barack_obama 1 9
guido_van_rossum 1 steve_wozniak 1
barack_obama 1 joe_biden 1
john_lennon 1 eric_clapton 1
amy_adams 1 kate_siegel 1
paul_rudd 1 steve_carell 1
rose_leslie 1 kit_harington 1
"""


@dataclass(frozen=True)
class Run:
    stdout: str
    stderr: str
    figures: dict[str, Any]
    png: Path


@pytest.fixture(scope="module")
def run(faces_dir: Path, tmp_path_factory: pytest.TempPathFactory) -> Run:
    out = tmp_path_factory.mktemp("accuracy")
    (out / "pairs.txt").write_text(PAIRS)
    command = [
        sys.executable,
        "-m",
        "bench.accuracy",
        str(faces_dir),
        "--pairs",
        str(out / "pairs.txt"),
        "--json",
        str(out / "figures.json"),
        "--png",
        str(out / "rates.png"),
    ]
    done = subprocess.run(command, check=False, cwd=ROOT, capture_output=True, text=True, timeout=600)
    assert done.returncode == 0, done.stderr
    return Run(done.stdout, done.stderr, json.loads((out / "figures.json").read_text()), out / "rates.png")


def test_the_defaults_name_every_genuine_photo_first_and_no_stranger(run: Run) -> None:
    figures = run.figures
    assert figures["labeled_folder"].endswith("people")
    assert figures["enroll_per_identity"] == 1
    assert figures["rank1_accuracy"] == 1.0
    assert figures["false_accept_rate"] == 0.0
    assert figures["misidentification_rate"] == 0.0
    assert figures["misidentified"] == [] and figures["false_accepts"] == []
    assert 0.0 <= figures["false_reject_rate"] <= 1.0


def test_the_split_follows_the_stated_rule(run: Run) -> None:
    split, counts = run.figures["split"], run.figures["counts"]
    single = {"amy_adams", "steve_carell", "kate_siegel", "paul_rudd", "lin_manuel_miranda"}
    assert set(split["too_few_photos"]) == single
    assert len(split["held_out"]) == 3  # 30% of the 10 people with several photos
    assert len(split["enrolled"]) + len(split["strangers"]) == 15
    assert counts["identities_enrolled"] == len(split["enrolled"]) == 7
    assert counts["skipped"] == 0
    # Every photo is used exactly once: enrolled, genuine probe or stranger.
    assert counts["photos_enrolled"] + counts["genuine_probes"] + counts["stranger_photos"] == 37
    assert "fewer than 2 photos are strangers" in run.stdout


def test_the_report_shows_the_rates_the_table_and_progress(run: Run) -> None:
    for line in ["rank-1 accuracy", "false-reject rate", "misidentification rate", "false-accept rate"]:
        assert line in run.stdout
    assert re.search(rf"^\s+{DEFAULT_TOLERANCE:.2f} .*<- default tolerance$", run.stdout, re.MULTILINE)
    assert "FAR = 0 with the lowest FRR" in run.stdout
    assert re.search(r"probing: (\d+)/\1 photos, \d+\.\d s", run.stderr)

    sweep = run.figures["sweep"]
    assert sweep[0]["threshold"] == 0.30 and sweep[-1]["threshold"] == 0.80
    assert len(sweep) == 27  # 0.30..0.80 by 0.02, and the default 0.55
    fars = [row["far"] for row in sweep]
    frrs = [row["frr"] for row in sweep]
    assert fars == sorted(fars) and frrs == sorted(frrs, reverse=True)
    exact = run.figures["far_zero_lowest_frr_range"]
    assert exact["upper"] is None or exact["lower"] < exact["upper"]


def test_the_png_is_drawn(run: Run) -> None:
    assert run.png.read_bytes().startswith(b"\x89PNG\r\n\x1a\n")


def test_pairs_in_our_layout_are_verified(run: Run) -> None:
    pairs = run.figures["pairs"]
    assert (pairs["pairs"], pairs["same"], pairs["different"]) == (11, 5, 6)
    assert pairs["skipped"] == [{"line": 7, "reason": "missing photo", "photos": ["barack_obama 9"]}]
    assert pairs["method"].startswith("single split")
    # Same-person photos are at most ~0.55 apart here and different people at least ~0.6.
    assert pairs["accuracy"] == 1.0
    assert pairs["accuracy_at_tolerance"] >= 10 / 11
    assert "Pair verification" in run.stdout
