"""The reports' arithmetic (services/api/reports/rates.py): what the rate counts and leaves out."""

from datetime import UTC, datetime, timedelta

import pytest

from services.api.reports.rates import Tally, is_below, percent, session_state, tally


def test_the_rate_is_present_and_late_over_the_decided_statuses_excused_left_out() -> None:
    counts = tally(["present", "late", "absent", "excused", "not_seen", "present"])
    assert counts == Tally(present=2, late=1, absent=1, excused=1, not_seen=1)
    assert (counts.attended, counts.counted) == (3, 4)
    assert counts.rate == 0.75


def test_an_excuse_neither_helps_nor_hurts() -> None:
    assert tally(["present", "absent"]).rate == tally(["present", "absent", "excused", "excused"]).rate == 0.5


@pytest.mark.parametrize("statuses", [[], ["excused"], ["not_seen", "excused"]])
def test_nothing_decided_is_no_rate_not_zero(statuses: list[str]) -> None:
    assert tally(statuses).rate is None
    assert percent(tally(statuses).rate) == ""
    assert not is_below(tally(statuses).rate, 80)


def test_an_unknown_word_is_not_a_status() -> None:
    assert tally(["present", "sleeping"]) == Tally(present=1, not_seen=1)


@pytest.mark.parametrize(
    ("rate", "threshold", "below"),
    [
        (0.79, 80, True),
        (0.8, 80, False),
        (1.0, 100, False),
        (0.0, 0, False),
        (0.0, 0.1, True),
        (0.5, 50.0, False),
    ],
)
def test_below_the_threshold_is_strictly_under_it(rate: float, threshold: float, below: bool) -> None:
    assert is_below(rate, threshold) is below


def test_percent_has_one_decimal() -> None:
    assert [percent(r) for r in (2 / 3, 1.0, 0.0)] == ["66.7 %", "100.0 %", "0.0 %"]


def test_a_session_counts_from_its_start() -> None:
    start = datetime(2026, 9, 7, 8, tzinfo=UTC)
    end = start + timedelta(hours=1)
    assert session_state(start, end, start - timedelta(microseconds=1)) == "scheduled"
    assert session_state(start, end, start) == "running"
    assert session_state(start, end, end) == "ended"
