"""Generate a synthetic lesson: `python -m bench.lessons --preset small --seed 1`.

Prints the lesson's folder (`<out>/<preset>-seed<seed>`); an existing lesson drawn from the
same settings is kept, not redrawn (--force redraws it).
"""

import argparse
import sys
from pathlib import Path

from bench.lessons.lesson import PRESETS, cached, generate, preset
from bench.lessons.script import SCENES
from harness.paths import ARTIFACTS


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(prog="python -m bench.lessons", description=__doc__)
    parser.add_argument("--preset", choices=sorted(PRESETS), default="small")
    parser.add_argument("--seed", type=int, default=1)
    parser.add_argument("--out", type=Path, default=ARTIFACTS / "lessons", help="parent folder")
    parser.add_argument("--force", action="store_true", help="redraw even if the lesson exists")
    for name in ("enrolled", "roster", "present", "strangers", "others", "width"):
        parser.add_argument(f"--{name}", type=int)
    parser.add_argument("--duration", dest="duration_s", type=float, help="seconds of video")
    parser.add_argument("--fps", type=float)
    parser.add_argument("--scene", choices=SCENES, help="class, seated or door (bench.lessons.script)")
    args = parser.parse_args(argv)
    overrides = {
        k: getattr(args, k)
        for k in (
            "enrolled",
            "roster",
            "present",
            "strangers",
            "others",
            "width",
            "duration_s",
            "fps",
            "scene",
        )
    }
    spec = preset(args.preset, args.seed, **overrides)
    out = args.out / spec.folder_name(args.preset)
    if args.force:
        truth, made = generate(spec, out), True
    else:
        truth, made = cached(spec, out)
    sys.stdout.write(
        f"{out}  ({'generated' if made else 'cached'}: {truth['frames']} frames, {len(truth['enrolled'])} "
        f"enrolled, roster {len(truth['roster'])}, present {len(truth['present'])}, "
        f"{len(truth['strangers'])} strangers, {len(truth['others'])} other-class)\n"
    )
