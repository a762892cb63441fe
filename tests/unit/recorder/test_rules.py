from datetime import UTC, datetime, timedelta

import pytest

from services.common.sessions import ClassSession
from services.recorder import rules

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def session(sid: int, start_h: float, end_h: float, default: bool = False) -> ClassSession:
    return ClassSession(
        sid, f"s{sid}", "cam", None, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h), default
    )


def test_late_only_after_the_threshold_of_a_scheduled_session() -> None:
    scheduled = session(1, 0, 1)
    assert rules.status_for(scheduled, T0 + timedelta(minutes=5), None) == "present"
    assert rules.status_for(scheduled, T0 + timedelta(minutes=5), 10) == "present"
    assert rules.status_for(scheduled, T0 + timedelta(minutes=11), 10) == "late"
    assert rules.status_for(session(2, 0, 24, default=True), T0 + timedelta(hours=5), 10) == "present"


@pytest.mark.parametrize(
    ("offsets_s", "needed", "expected"),
    [
        ([0], 1, (0, 0)),
        ([0, 30], 2, None),  # too far apart within a 10 s window
        ([0, 30, 35], 2, (1, 2)),
        ([0, 4, 9], 3, (0, 2)),
        ([0, 4, 11], 3, None),
        ([], 1, None),
    ],
)
def test_a_mark_needs_enough_sightings_within_the_window(
    offsets_s: list[int], needed: int, expected: tuple[int, int] | None
) -> None:
    sightings = [T0 + timedelta(seconds=s) for s in offsets_s]
    assert rules.mark_span(sightings, needed, timedelta(seconds=10)) == expected
