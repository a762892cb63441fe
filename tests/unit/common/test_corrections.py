"""The rules of changing a status (services/common/corrections.py), as pure functions."""

from datetime import UTC, datetime, timedelta

import pytest

from services.common.corrections import (
    RECOGNITION,
    SYSTEM,
    Actor,
    ChangeRefusedError,
    Current,
    InvalidChangeError,
    check_request,
    check_timing,
    decide,
)

TEACHER = Actor("person", "ada (user 3)", 3)


def row(status: str, set_by: str) -> Current:
    return Current(1, "6f1c9d6e-0000-4000-8000-000000000001", status, set_by)


@pytest.mark.parametrize("status", ["", "Present", "gone", "absent "])
def test_a_status_that_does_not_exist_is_invalid(status: str) -> None:
    with pytest.raises(InvalidChangeError, match="status must be one of"):
        check_request(status, TEACHER, "a reason")


@pytest.mark.parametrize("reason", ["", "   "])
def test_a_persons_change_needs_a_reason(reason: str) -> None:
    with pytest.raises(InvalidChangeError, match="needs a reason"):
        check_request("absent", TEACHER, reason)


def test_excusing_always_needs_a_reason_and_only_a_person_excuses() -> None:
    with pytest.raises(InvalidChangeError, match="excusing a student needs a reason"):
        check_request("excused", TEACHER, "")
    with pytest.raises(InvalidChangeError, match="system cannot set"):
        check_request("excused", SYSTEM, "doctor's note")


def test_each_source_sets_only_its_own_statuses() -> None:
    assert check_request("present", RECOGNITION, "") == ""
    assert check_request("absent", SYSTEM, "") == ""
    with pytest.raises(InvalidChangeError):
        check_request("absent", RECOGNITION, "")
    with pytest.raises(InvalidChangeError):
        check_request("present", SYSTEM, "")


def test_a_reason_is_trimmed_and_bounded() -> None:
    assert check_request("excused", TEACHER, "  ill  ") == "ill"
    with pytest.raises(InvalidChangeError, match="at most 500"):
        check_request("excused", TEACHER, "x" * 501)


def test_no_row_a_person_or_the_system_marks_recognition_cannot() -> None:
    assert decide(None, "excused", TEACHER) == "mark"
    assert decide(None, "absent", SYSTEM) == "mark"
    with pytest.raises(ChangeRefusedError):
        decide(None, "present", RECOGNITION)


def test_the_same_status_changes_nothing() -> None:
    assert decide(row("present", "recognition"), "present", TEACHER) == "unchanged"
    assert decide(row("present", "person"), "present", RECOGNITION) == "unchanged"


@pytest.mark.parametrize("status", ["absent", "excused", "late", "present"])
def test_recognition_never_overrides_a_person(status: str) -> None:
    target = "late" if status == "present" else "present"
    with pytest.raises(ChangeRefusedError, match="never overrides a status set by person"):
        decide(row(status, "person"), target, RECOGNITION)


def test_recognition_turns_only_a_system_absence_into_present() -> None:
    assert decide(row("absent", "system"), "present", RECOGNITION) == "change"
    assert decide(row("absent", "system"), "late", RECOGNITION) == "change"
    with pytest.raises(ChangeRefusedError):
        decide(row("late", "recognition"), "present", RECOGNITION)


def test_the_system_never_changes_a_row() -> None:
    with pytest.raises(ChangeRefusedError):
        decide(row("present", "recognition"), "absent", SYSTEM)


def test_a_person_changes_anything() -> None:
    for status, set_by in [("present", "recognition"), ("absent", "system"), ("excused", "person")]:
        assert decide(row(status, set_by), "late", TEACHER) == "change"


def test_nobody_is_present_before_the_session_starts_but_may_be_excused() -> None:
    starts = datetime(2026, 3, 2, 9, 0, tzinfo=UTC)
    with pytest.raises(ChangeRefusedError, match="has not started"):
        check_timing("present", starts, starts - timedelta(seconds=1))
    check_timing("excused", starts, starts - timedelta(days=1))
    check_timing("absent", starts, starts - timedelta(days=1))
    check_timing("late", starts, starts)
