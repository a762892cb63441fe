from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import pytest

from services.recorder import rules
from services.recorder.rules import Session

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def session(sid: int, start_h: float, end_h: float, default: bool = False) -> Session:
    return Session(sid, f"s{sid}", "cam", T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h), default)


def test_the_running_scheduled_session_is_chosen() -> None:
    sessions = [session(1, 0, 1), session(2, 1, 2)]
    assert rules.scheduled_session_at(sessions, T0 + timedelta(minutes=30)).id == 1  # type: ignore[union-attr]
    assert rules.scheduled_session_at(sessions, T0 + timedelta(hours=1)).id == 2  # type: ignore[union-attr]
    assert rules.scheduled_session_at(sessions, T0 + timedelta(hours=2)) is None  # ends_at is exclusive
    assert rules.scheduled_session_at(sessions, T0 - timedelta(seconds=1)) is None


def test_overlapping_sessions_prefer_the_latest_to_start_and_ignore_defaults() -> None:
    sessions = [session(1, 0, 3), session(2, 1, 2), session(3, -9, 15, default=True)]
    assert rules.scheduled_session_at(sessions, T0 + timedelta(hours=1.5)).id == 2  # type: ignore[union-attr]
    assert rules.scheduled_session_at([session(3, -9, 15, default=True)], T0) is None


def test_the_day_and_the_default_session_follow_the_school_time_zone() -> None:
    paris = ZoneInfo("Europe/Paris")
    late_evening_utc = datetime(2026, 12, 1, 23, 30, tzinfo=UTC)  # already Dec 2 in Paris
    assert rules.local_day(late_evening_utc, paris) == date(2026, 12, 2)
    start, end = rules.default_session_span(date(2026, 12, 2), paris)
    assert start == datetime(2026, 12, 1, 23, 0, tzinfo=UTC)
    assert end - start == timedelta(hours=24)


def test_a_default_session_lasts_the_whole_local_day_across_daylight_saving() -> None:
    start, end = rules.default_session_span(date(2026, 3, 29), ZoneInfo("Europe/Paris"))
    assert end - start == timedelta(hours=23)


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
