"""The timetable's rules: which days a weekly slot meets, its span in UTC, and clashes."""

from datetime import UTC, date, datetime, time
from zoneinfo import ZoneInfo

from services.common.timetable import (
    Holiday,
    Slot,
    Term,
    days_ahead,
    overlaps,
    plan,
    slot_days,
    slot_span,
    slots_clash,
)

PARIS = ZoneInfo("Europe/Paris")
TERM = Term(1, "Autumn", date(2024, 9, 2), date(2024, 10, 31))  # 2 September 2024 is a Monday


def slot(
    weekday: int = 2, starts: time = time(8), ends: time = time(10), camera: str = "room-1", term: int = 1
) -> Slot:
    return Slot(7, 3, term, camera, weekday, starts, ends)


def test_a_slot_meets_on_its_weekday_within_the_term_except_holidays() -> None:
    toussaint = Holiday(1, "Toussaint", date(2024, 10, 21), date(2024, 10, 27))
    days = slot_days(slot(weekday=2), TERM, [toussaint], date(2024, 1, 1), date(2025, 1, 1))
    assert days[0] == date(2024, 9, 4)  # the term's first Wednesday
    assert days[-1] == date(2024, 10, 30)
    assert date(2024, 10, 23) not in days
    assert len(days) == 8
    assert all(d.weekday() == 2 for d in days)


def test_a_slot_meets_only_in_the_window_asked_for() -> None:
    assert slot_days(slot(weekday=0), TERM, [], date(2024, 9, 2), date(2024, 9, 2)) == [date(2024, 9, 2)]
    assert slot_days(slot(weekday=1), TERM, [], date(2024, 9, 2), date(2024, 9, 2)) == []
    assert slot_days(slot(weekday=0), TERM, [], date(2025, 1, 1), date(2025, 2, 1)) == []


def test_a_slots_span_is_local_wall_clock_time_on_both_sides_of_a_dst_change() -> None:
    assert slot_span(date(2024, 9, 4), time(8), time(10), PARIS) == (
        datetime(2024, 9, 4, 6, tzinfo=UTC),
        datetime(2024, 9, 4, 8, tzinfo=UTC),
    )
    assert slot_span(date(2024, 10, 30), time(8), time(10), PARIS)[0] == datetime(2024, 10, 30, 7, tzinfo=UTC)


def test_the_plan_skips_slots_of_unknown_terms_and_is_ordered_by_start() -> None:
    early, late = Slot(1, 3, 1, "a", 0, time(8), time(9)), Slot(2, 3, 1, "b", 0, time(7), time(8))
    orphan = Slot(3, 3, 99, "c", 0, time(7), time(8))
    planned = plan([early, late, orphan], {1: TERM}, [], date(2024, 9, 2), date(2024, 9, 9), tz=PARIS)
    assert [(p.slot.id, p.day) for p in planned] == [
        (2, date(2024, 9, 2)),
        (1, date(2024, 9, 2)),
        (2, date(2024, 9, 9)),
        (1, date(2024, 9, 9)),
    ]


def test_spans_overlap_only_when_they_share_a_moment() -> None:
    def at(hour: int) -> datetime:
        return datetime(2024, 9, 2, hour, tzinfo=UTC)

    assert overlaps((at(8), at(10)), (at(9), at(11)))
    assert overlaps((at(8), at(10)), (at(8), at(9)))
    assert not overlaps((at(8), at(10)), (at(10), at(11)))  # back to back


def test_slots_clash_on_one_camera_weekday_hours_and_term() -> None:
    spring = Term(2, "Spring", date(2025, 1, 6), date(2025, 3, 28))
    assert slots_clash(slot(), slot(starts=time(9), ends=time(11)), TERM, TERM)
    assert not slots_clash(slot(), slot(starts=time(10), ends=time(11)), TERM, TERM)
    assert not slots_clash(slot(), slot(camera="room-2"), TERM, TERM)
    assert not slots_clash(slot(), slot(weekday=3), TERM, TERM)
    assert not slots_clash(slot(), slot(term=2), TERM, spring)


def test_the_window_starts_on_the_schools_today() -> None:
    late_evening_utc = datetime(2024, 9, 1, 23, 30, tzinfo=UTC)  # already 2 September in Paris
    assert days_ahead(late_evening_utc, PARIS, 7) == (date(2024, 9, 2), date(2024, 9, 9))
