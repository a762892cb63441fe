"""Turning API answers into what pages show: times in the school's zone, status labels, rosters.

Pure functions: the live page's first render, its JSON snapshot and the live events all use
them, so a student's line reads the same however it got there.
"""

import logging
from collections.abc import Mapping
from datetime import date, datetime
from typing import Any
from zoneinfo import ZoneInfo

logger = logging.getLogger(__name__)

STATUS_WORDS = {
    "present": "present",
    "late": "late",
    "absent": "absent",
    "excused": "excused",
    "not_seen": "not yet seen",
}
# What the live page counts, in the order it shows them (of the students expected).
TALLY = ("present", "late", "absent", "excused", "not_seen")
# Statuses that came with a sighting: their line says when.
SEEN = frozenset({"present", "late"})


def parse_time(value: str | datetime | None) -> datetime | None:
    """An API timestamp (ISO 8601; naive means UTC) as an aware datetime."""
    if value is None or value == "":
        return None
    moment = value if isinstance(value, datetime) else datetime.fromisoformat(str(value))
    if moment.tzinfo is None:
        moment = moment.replace(tzinfo=ZoneInfo("UTC"))
    return moment


def local_time(value: str | datetime | None, tz: ZoneInfo, seconds: bool = False) -> str:
    """ "09:03" (or "09:03:12") in the school's zone; "" when there is no time."""
    moment = parse_time(value)
    if moment is None:
        return ""
    return moment.astimezone(tz).strftime("%H:%M:%S" if seconds else "%H:%M")


def local_datetime(value: str | datetime | None, tz: ZoneInfo) -> str:
    moment = parse_time(value)
    return "" if moment is None else moment.astimezone(tz).strftime("%Y-%m-%d %H:%M")


def today(tz: ZoneInfo) -> date:
    return datetime.now(tz).date()


def status_label(status: str, first_seen_local: str) -> str:
    """What a roster line says: "present 09:03", "late 09:12", "absent", "excused" or "not yet seen"."""
    word = STATUS_WORDS.get(status, status)
    return f"{word} {first_seen_local}" if status in SEEN and first_seen_local else word


def roster_line(entry: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """One line of a roster, from anything carrying a mark's fields (a roll entry of
    GET /sessions/{id}/attendance, or an attendance.marked event): the same names everywhere."""
    status = entry.get("status") or "not_seen"
    first_seen = local_time(entry.get("first_seen_at"), tz)
    return {
        "student_id": entry["student_id"],
        "student_name": entry.get("student_name", ""),
        "student_number": entry.get("student_number", ""),
        "status": status,
        "word": STATUS_WORDS.get(status, status),
        "first_seen": first_seen,
        "last_seen": local_time(entry.get("last_seen_at"), tz),
        "label": status_label(status, first_seen),
        "expected": bool(entry.get("expected", True)),  # false: marked, but not on the roster
        # Named on thin evidence (the recognizer's "check" tier): a person should confirm it.
        "check": entry.get("confidence") == "check" and status in SEEN,
        "source": entry.get("source"),  # who set the status now (recognition, person, system)
        "reason": entry.get("reason") or "",
    }


def tally(lines: list[dict[str, Any]]) -> dict[str, int]:
    """How many expected students have each status (TALLY), as the live page counts them."""
    counts = dict.fromkeys(TALLY, 0)
    for line in lines:
        if line["expected"] and line["status"] in counts:
            counts[line["status"]] += 1
    return counts


def session_summary(session: dict[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    starts, ends = session.get("starts_at"), session.get("ends_at")
    return {
        "id": session["id"],
        "name": session.get("name", ""),
        "camera_id": session.get("camera_id", ""),
        "is_default": bool(session.get("is_default")),
        "starts": local_datetime(starts, tz),
        "ends": local_datetime(ends, tz),
        "span": f"{local_time(starts, tz)}\N{EN DASH}{local_time(ends, tz)}",
        "day": local_datetime(starts, tz)[:10],
    }


def live_state(attendance: dict[str, Any], recent: list[dict[str, Any]], tz: ZoneInfo) -> dict[str, Any]:
    """A session's live snapshot (the page's first render and /sessions/<id>/state.json)."""
    students = [roster_line(s, tz) for s in attendance.get("students", [])]
    present = attendance.get("present")
    if present is None:
        present = sum(1 for s in students if s["status"] != "not_seen")
    return {
        "session": session_summary(attendance["session"], tz),
        "expected": attendance.get("expected", len(students)),
        "present": present,  # present or late
        "counts": tally(students),
        "students": students,
        "recent": recent,
    }


def attendance_mark(event: Mapping[str, Any], tz: ZoneInfo) -> dict[str, Any]:
    """An attendance.marked or attendance.changed event as the live page applies it: a roster
    line (with the new status), and where it goes."""
    return {"session_id": event["session_id"], "camera_id": event["camera_id"], **roster_line(event, tz)}


def page_count(total: int, page_size: int) -> int:
    return max(1, -(-total // max(page_size, 1)))
