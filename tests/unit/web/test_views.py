"""Times in the school's zone and the lines pages show."""

from datetime import UTC, datetime
from zoneinfo import ZoneInfo

from services.web import views

PARIS = ZoneInfo("Europe/Paris")


def test_times_are_shown_in_the_schools_zone() -> None:
    assert views.local_time("2026-03-02T07:05:09+00:00", PARIS) == "08:05"
    assert views.local_time("2026-07-02T07:05:09Z", PARIS, seconds=True) == "09:05:09"  # summer time
    assert views.local_time(datetime(2026, 3, 2, 7, 5, tzinfo=UTC), PARIS) == "08:05"
    assert views.local_datetime("2026-03-02T23:30:00+00:00", PARIS) == "2026-03-03 00:30"


def test_a_naive_time_is_utc_and_no_time_is_empty() -> None:
    assert views.local_time("2026-03-02T07:05:00", PARIS) == "08:05"
    assert views.local_time(None, PARIS) == ""
    assert views.local_datetime("", PARIS) == ""


def test_status_labels() -> None:
    assert views.status_label("present", "08:05") == "present 08:05"
    assert views.status_label("late", "08:20") == "late 08:20"
    assert views.status_label("not_seen", "") == "not yet seen"


def attendance() -> dict:
    return {
        "session": {
            "id": 4,
            "name": "Maths",
            "camera_id": "cam1",
            "starts_at": "2026-03-02T07:00:00+00:00",
            "ends_at": "2026-03-02T08:00:00+00:00",
            "is_default": False,
        },
        "expected": 2,
        "present": 1,
        "students": [
            {"student_id": 1, "student_number": "S1", "student_name": "Ada", "status": "present",
             "first_seen_at": "2026-03-02T07:03:00+00:00", "last_seen_at": "2026-03-02T07:09:00+00:00"},
            {"student_id": 2, "student_number": "S2", "student_name": "Alan", "status": "not_seen",
             "first_seen_at": None, "last_seen_at": None},
        ],
    }  # fmt: skip


def test_live_state_is_what_the_page_and_its_snapshot_show() -> None:
    state = views.live_state(attendance(), recent=[{"entry_id": 1}], tz=PARIS)
    assert state["session"]["span"] == "08:00\N{EN DASH}09:00"
    assert state["session"]["camera_id"] == "cam1"
    assert (state["expected"], state["present"]) == (2, 1)
    ada, alan = state["students"]
    assert (ada["label"], ada["first_seen"], ada["last_seen"]) == ("present 08:03", "08:03", "08:09")
    assert (alan["status"], alan["label"], alan["word"]) == ("not_seen", "not yet seen", "not yet seen")
    assert state["recent"] == [{"entry_id": 1}]


def test_a_mark_event_reads_like_a_roster_line() -> None:
    mark = views.attendance_mark(
        {
            "session_id": 4,
            "camera_id": "cam1",
            "student_id": 2,
            "student_name": "Alan",
            "student_number": "S2",
            "status": "late",
            "first_seen_at": "2026-03-02T07:21:00+00:00",
        },
        PARIS,
    )
    assert mark["label"] == "late 08:21"
    roster = views.roster_line(
        {"student_id": 2, "student_name": "Alan", "status": "late", "first_seen_at": "2026-03-02T07:21:00Z"},
        PARIS,
    )
    assert {k: roster[k] for k in ("student_id", "student_name", "status", "label")} == {
        k: mark[k] for k in ("student_id", "student_name", "status", "label")
    }


def test_page_count() -> None:
    assert views.page_count(0, 50) == 1
    assert views.page_count(50, 50) == 1
    assert views.page_count(51, 50) == 2
