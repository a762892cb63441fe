"""The arithmetic of attendance reports, as pure functions (tests/unit/api/test_report_rates.py).

**The attendance rate** of a student, a session or a course is

    (present + late) / (present + late + absent)

over the sessions that have started (ended or running), counting only decided statuses:

- `excused` is left out of both sides: an excused lesson neither helps nor hurts;
- a roster student with no row yet (`not_seen`: the session is running, or it ended and the
  recorder has not decided its absences yet) is left out too, until a status is decided;
- with nothing counted the rate is None ("no rate"), never 0 % nor 100 %.

A student is **below the threshold** when they have a rate and it is under the threshold
(a percentage, API_REPORT_THRESHOLD_PERCENT by default); without a rate they are not listed.
"""

from collections.abc import Iterable
from dataclasses import dataclass
from datetime import datetime
from typing import Literal

# A cell of a report: one of the four statuses, or no row yet.
NOT_SEEN = "not_seen"
STATUSES = ("present", "late", "absent", "excused")
ATTENDED = frozenset({"present", "late"})
COUNTED = frozenset({"present", "late", "absent"})

SessionState = Literal["scheduled", "running", "ended"]


@dataclass(frozen=True)
class Tally:
    """How many of each status, and the rate they give (module docstring)."""

    present: int = 0
    late: int = 0
    absent: int = 0
    excused: int = 0
    not_seen: int = 0

    @property
    def attended(self) -> int:
        return self.present + self.late

    @property
    def counted(self) -> int:
        """The rate's denominator: sessions with a decided status that is not excused."""
        return self.present + self.late + self.absent

    @property
    def rate(self) -> float | None:
        """Between 0 and 1, or None when nothing is counted."""
        return self.attended / self.counted if self.counted else None


def tally(statuses: Iterable[str]) -> Tally:
    """Count statuses; anything that is not one of the four is `not_seen`."""
    counts = dict.fromkeys((*STATUSES, NOT_SEEN), 0)
    for status in statuses:
        counts[status if status in counts else NOT_SEEN] += 1
    return Tally(**counts)


def percent(rate: float | None) -> str:
    """'87.5 %' (one decimal, rounded half to even as Python does), or '' for no rate."""
    return "" if rate is None else f"{rate * 100:.1f} %"


def is_below(rate: float | None, threshold_percent: float) -> bool:
    """Below the threshold: a rate under it. No rate is not below (nothing to judge yet)."""
    return rate is not None and rate * 100 < threshold_percent


def session_state(starts_at: datetime, ends_at: datetime, now: datetime) -> SessionState:
    """Only running and ended sessions count in a report over many sessions."""
    if now < starts_at:
        return "scheduled"
    return "running" if now < ends_at else "ended"
