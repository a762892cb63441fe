"""Which session a sighting belongs to: the pure rules of services.common.sessions."""

from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

from services.common import sessions as rules
from services.common.sessions import ClassSession

T0 = datetime(2026, 12, 1, 9, 0, tzinfo=UTC)


def session(sid: int, start_h: float, end_h: float, default: bool = False) -> ClassSession:
    return ClassSession(
        sid, f"s{sid}", "cam", None, T0 + timedelta(hours=start_h), T0 + timedelta(hours=end_h), default
    )


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
