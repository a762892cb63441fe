"""The reports' answers (docs/api-contract.md, "Reports") as the pages show them: rates in
percent, times in the school's zone, status words, how late a late student was. Pure
functions of the API's JSON, so they are tested without a server."""

import contextlib
import math
from collections.abc import Mapping
from datetime import date
from typing import Any
from zoneinfo import ZoneInfo

from services.web import views
from services.web.report_chart import Bar

COUNT_KEYS = ("present", "late", "absent", "excused", "not_seen")
SOURCE_WORDS = {"recognition": "camera", "person": "a person", "system": "the system"}
STATE_WORDS = {"scheduled": "not started", "running": "running", "ended": "ended"}


def rate_text(rate: float | None) -> str:
    """ "66.7%", as the CSV has it (one decimal); a dash when nothing was counted."""
    return "\N{EM DASH}" if rate is None else f"{rate * 100:.1f}%"


def counts_view(counts: Mapping[str, Any] | None) -> dict[str, Any]:
    counts = counts or {}
    rate = counts.get("rate")
    return {
        **{key: int(counts.get(key) or 0) for key in (*COUNT_KEYS, "counted")},
        "rate": rate,
        "rate_text": rate_text(rate),
    }


def student_ref(student: Mapping[str, Any]) -> dict[str, Any]:
    return {
        "id": student.get("id"),
        "name": student.get("name", ""),
        "number": student.get("student_number", ""),
    }


def course_label(course: Mapping[str, Any] | None) -> str:
    if not course:
        return ""
    return f"{course.get('code', '')} {course.get('name', '')}".strip()


def minutes_late(status: str, starts_at: Any, first_seen_at: Any) -> int | None:
    """Whole minutes from the session's start to the first sighting of a late student."""
    if status != "late":
        return None
    starts, seen = views.parse_time(starts_at), views.parse_time(first_seen_at)
    if starts is None or seen is None or seen < starts:
        return None
    return int((seen - starts).total_seconds() // 60)


def _session_times(session: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    summary = views.session_summary(dict(session), tz)
    return {"id": summary["id"], "name": summary["name"], "camera_id": summary["camera_id"],
            "day": summary["day"], "span": summary["span"], "starts": summary["starts"]}  # fmt: skip


def _mark(line: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """A status with its times and who set it (a roll line or a student's session)."""
    status = str(line.get("status") or "not_seen")
    source = line.get("source")
    return {
        "status": status,
        "word": views.STATUS_WORDS.get(status, status),
        "first_seen": views.local_time(line.get("first_seen_at"), tz),
        "last_seen": views.local_time(line.get("last_seen_at"), tz),
        "source": source,
        "source_word": SOURCE_WORDS.get(str(source), "") if source else "",
        "reason": line.get("reason") or "",
        "check": line.get("confidence") == "check" and status in views.SEEN,
    }


def course_report(report: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    sessions = [
        {
            **_session_times(column["session"], tz),
            "state": column.get("state", ""),
            "state_word": STATE_WORDS.get(str(column.get("state")), str(column.get("state", ""))),
            "counts": counts_view(column.get("counts")),
        }
        for column in report.get("sessions", [])
    ]

    def row(entry: Mapping[str, Any]) -> dict[str, Any]:
        return {
            "student": student_ref(entry.get("student", {})),
            "on_roster": bool(entry.get("on_roster", True)),
            "counts": counts_view(entry.get("counts")),
            "below": bool(entry.get("below_threshold")),
        }

    course, term = report.get("course", {}), report.get("term", {})
    threshold = float(report.get("threshold_percent", 0))
    for column in sessions:  # a session the roster attended less than the threshold
        rate = column["counts"]["rate"]
        column["below"] = rate is not None and rate * 100 < threshold
    return {
        "course": {**course, "label": course_label(course)},
        "term": term,
        "threshold": threshold,
        "counts": counts_view(report.get("counts")),
        "sessions": sessions,
        "students": [row(entry) for entry in report.get("students", [])],
        "below": [row(entry) for entry in report.get("below_threshold", [])],
    }


def chart_bars(report: Mapping[str, Any], tz: ZoneInfo) -> list[Bar]:
    """One bar per session of a course report, labelled by its local day (month-day)."""
    bars = []
    for column in report.get("sessions", []):
        day = views.local_datetime(column["session"].get("starts_at"), tz)[5:10]
        bars.append(Bar(day, (column.get("counts") or {}).get("rate")))
    return bars


def chart_title(report: Mapping[str, Any]) -> str:
    term = report.get("term", {}).get("name", "")
    return f"{course_label(report.get('course'))} \N{MIDDLE DOT} {term}: attended per session"


def session_report(report: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    session = report["session"]
    lines = []
    for line in report.get("students", []):
        mark = _mark(line, tz)
        lines.append(
            {
                "student": student_ref(line.get("student", {})),
                "on_roster": bool(line.get("on_roster", True)),
                **mark,
                "late_by": minutes_late(mark["status"], session.get("starts_at"), line.get("first_seen_at")),
            }
        )
    course = report.get("course")
    return {
        "session": _session_times(session, tz),
        "course": {**course, "label": course_label(course)} if course else None,
        "state": report.get("state", ""),
        "state_word": STATE_WORDS.get(str(report.get("state")), str(report.get("state", ""))),
        "finalized": bool(report.get("finalized")),
        "counts": counts_view(report.get("counts")),
        "students": lines,
    }


def student_report(report: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    sessions = []
    for line in report.get("sessions", []):
        session = line.get("session", {})
        mark = _mark(line, tz)
        sessions.append(
            {
                "session": _session_times(session, tz),
                "course": course_label(line.get("course")),
                "state_word": STATE_WORDS.get(str(line.get("state")), str(line.get("state", ""))),
                **mark,
                "late_by": minutes_late(mark["status"], session.get("starts_at"), line.get("first_seen_at")),
            }
        )
    late = [s["late_by"] for s in sessions if s["late_by"] is not None]
    return {
        "student": student_ref(report.get("student", {})),
        "start": str(report.get("start", "")),
        "end": str(report.get("end", "")),
        "counts": counts_view(report.get("counts")),
        "courses": [
            {
                "label": course_label(entry.get("course")) or "sessions without a course",
                "counts": counts_view(entry.get("counts")),
            }
            for entry in report.get("courses", [])
        ],
        "sessions": sessions,
        # Lateness: how many times, and by how much on average (of those with a sighting).
        "late_count": sum(1 for s in sessions if s["status"] == "late"),
        "late_average_min": round(sum(late) / len(late)) if late else None,
    }


def parse_day(value: str | None) -> str | None:
    """A YYYY-MM-DD from a form, or None when empty; ValueError for anything else."""
    value = (value or "").strip()
    if not value:
        return None
    return date.fromisoformat(value).isoformat()


def parse_threshold(value: str | None) -> float | None:
    """A percent from the form (0..100 is the API's to check), or None when empty."""
    value = (value or "").strip().rstrip("%").strip()
    if not value:
        return None
    number = float(value)
    if not math.isfinite(number):
        raise ValueError(value)
    return number


def term_days_until(term: Mapping[str, Any], today: date) -> tuple[str, str]:
    """A student report's range for a term: its first day to its last, or today if sooner."""
    first = str(term.get("first_day", ""))
    last = str(term.get("last_day", ""))
    with contextlib.suppress(ValueError):  # a malformed day is sent as it is: the API says why
        last = min(date.fromisoformat(last), max(today, date.fromisoformat(first))).isoformat()
    return first, last
