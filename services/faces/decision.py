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

A session with a roster asks a smaller question: which of its class is this, or nobody? A
stranger is far less likely to resemble one of 30 than one of 300 (README, "Choosing the
tolerance"), so a track the strict rule leaves unknown may still be its class's student by
the looser *roster rule* (`roster_tolerance`, `roster_margin`, on the same fused embedding,
the margin still to everyone enrolled): the decision names that student as `roster_candidate`,
never as `identity`, and only the recorder, which knows the session's roster, marks them,
always as "check".
"""

from collections import Counter
from collections.abc import Sequence
from dataclasses import dataclass
from typing import Literal

import numpy as np

from services.faces.matching import Identity, Match, is_confident

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
    # Unnamed by the strict rule, but named by the roster rule: who, if on the session's roster.
    roster_candidate: Identity | None = None


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
    # The roster rule (module docstring) on the fused embedding; None: no roster rule.
    roster_tolerance: float | None = None
    roster_margin: float | None = None

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
        roster_candidate = None
        if identity is None and fused is not None and len(recent) >= self.agree and not contested:
            roster_candidate = self._roster_candidate(fused, named)
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
            roster_candidate=roster_candidate,
        )

    def _roster_candidate(self, fused: Match, named: Counter[Identity]) -> Identity | None:
        if self.roster_tolerance is None or fused.closest is None or fused.best_distance is None:
            return None
        if any(n != fused.closest for n in named):
            return None  # a look names somebody else by the strict rule
        margin = self.roster_margin or 0.0
        if not is_confident(fused.best_distance, fused.second_distance, self.roster_tolerance, margin):
            return None
        return fused.closest
