"""Deciding who a face is over a whole track, not one frame: the rule that names a student.

One frame's match can be wrong: at school scale (hundreds enrolled) a stranger lands within
the tolerance of someone in a few percent of photos (docs/performance-notes.md). A track is
the same face followed across frames, so its fresh encodings are several looks at one
person. A track is named only when
- it has at least `agree` fresh looks (of its last `window`),
- their fused embedding (the mean encoding, at the looks' mean length) names a student by the
  strict rule: within the tolerance AND beating the second-best student by the margin
  (services.faces.matching), and
- no look names anybody else by that rule.
Measured on LFW (README, "Choosing the tolerance"), fusing looks separates people better
than counting votes: at 300 enrolled with one photo each it names under 1% of strangers with
a third of the false rejects of a single photo. The evidence (how many looks, best and mean
distance, thinnest margin) travels with the name, and a name on thin evidence is marked
"check" so a person can look, rather than silently "present".
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.faces.matching import Identity, Match

Tier = Literal["confident", "check"]


@dataclass(frozen=True)
class Decision:
    identity: Identity | None  # None: not (yet) a student
    fresh: int  # encodings considered
    agreeing: int  # of them, naming `identity` (or the leading candidate when unnamed)
    best_distance: float | None
    mean_distance: float | None  # over the agreeing ones
    margin: float | None  # the thinnest margin among the agreeing ones
    tier: Tier | None  # for a named track
    contested: bool  # two different students were each named confidently
    candidate: Identity | None  # the student most often closest, named or not (for review)


def fuse(encodings: Sequence[np.ndarray]) -> np.ndarray:
    """One embedding for several looks: their mean, scaled back to their mean length (a mean of
    unrelated vectors is shorter than each, which would bring it closer to everyone)."""
    stack = np.asarray(encodings, dtype=np.float64).reshape(len(encodings), -1)
    mean = stack.mean(axis=0)
    length = float(np.linalg.norm(mean))
    return mean if length == 0 else mean * float(np.linalg.norm(stack, axis=1).mean()) / length


@dataclass(frozen=True)
class DecisionRule:
    agree: int = 3
    window: int = 4
    # Decide on the looks' fused embedding (True) or by counting looks that agree (False).
    fused: bool = True
    # A name is "confident" only when its agreeing looks are on average this close and the
    # thinnest margin is at least this wide; otherwise it is shown as "check".
    check_distance: float = 0.42
    check_margin: float = 0.12

    def decide(self, matches: Sequence[Match], fused: Match | None = None) -> Decision:
        """The decision over a track's recent fresh matches (oldest first) and the match of
        their fused embedding (None: decide by the looks' votes alone, `agree` of them)."""
        recent = list(matches)[-self.window :]
        named = Counter(m.identity for m in recent if m.identity is not None)
        closest = Counter(m.closest for m in recent if m.closest is not None)
        candidate = closest.most_common(1)[0][0] if closest else None
        contested = len(named) > 1
        if fused is not None:
            leader = fused.identity or fused.closest
            agreed = len(recent) >= self.agree and fused.identity is not None
            if fused.identity is not None and any(n != fused.identity for n in named):
                contested = True
        else:
            leader, votes = named.most_common(1)[0] if named else (candidate, 0)
            agreed = votes >= self.agree
        agreeing = [m for m in recent if leader is not None and m.closest == leader]
        distances = [m.best_distance for m in agreeing if m.best_distance is not None]
        margins = [m.margin for m in agreeing if m.margin is not None]
        identity = leader if agreed and not contested else None
        mean = sum(distances) / len(distances) if distances else None
        tier: Tier | None = None
        if identity is not None:
            thin = bool(margins) and min(margins) < self.check_margin
            tier = "check" if (mean is not None and mean > self.check_distance) or thin else "confident"
        all_best = [m.best_distance for m in recent if m.best_distance is not None]
        return Decision(
            identity=identity,
            fresh=len(recent),
            agreeing=len(agreeing),
            best_distance=min(distances) if distances else (min(all_best) if all_best else None),
            mean_distance=mean,
            margin=min(margins) if margins else None,
            tier=tier,
            contested=contested,
            candidate=candidate,
        )
