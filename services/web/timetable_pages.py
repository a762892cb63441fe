"""The timetable on the dashboard: courses with their rosters and weekly slots, and the
school's terms and holidays (docs/attendance-record.md, "Timetable"), all through the API
with the person's own token.

Everybody signed in reads (a teacher: their own courses, as the API answers); admins change
(identity.PERMISSIONS "timetable.manage": the forms are shown only to them, and the POST
URLs answer 403 to others before the API would). A slot added for today's weekday makes
today's session at once: the page says how to find it. A refusal (a clash on the camera, an
end before a start) comes back as the API's sentence beside the form.
"""

import logging
from typing import Any

from flask import Blueprint, abort, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.common.timetable import WEEKDAYS
from services.web import identity
from services.web.api_client import ApiClient, ApiRefusedError
from services.web.context import user_api

logger = logging.getLogger(__name__)

bp = Blueprint("timetable", __name__, url_prefix="/timetable")

# Enough for a school's roster form on one page (the API's page size limit is 500).
ROSTER_PAGE_SIZE = 500
ROSTER_PAGES = 20


def _refusal(error: ApiRefusedError) -> str:
    """The API's reason for a refused form (400/404/409/422); others go to the error page."""
    if error.status not in {400, 404, 409, 422}:
        raise error
    return error.detail


def _manager() -> None:
    identity.require("timetable.manage")


def _all_students(api: ApiClient) -> list[dict[str, Any]]:
    students: list[dict[str, Any]] = []
    for page in range(1, ROSTER_PAGES + 1):
        result = api.students(page=page, page_size=ROSTER_PAGE_SIZE)
        students.extend(result.get("items", []))
        if len(students) >= int(result.get("total", 0)):
            break
    return sorted(students, key=lambda s: (str(s.get("name", "")).lower(), s.get("id", 0)))


def _slot_line(slot: dict[str, Any], terms: dict[int, dict[str, Any]]) -> dict[str, Any]:
    term = terms.get(int(slot.get("term_id", 0)), {})
    weekday = int(slot.get("weekday", 0))
    return {
        **slot,
        "weekday_name": WEEKDAYS[weekday] if 0 <= weekday < len(WEEKDAYS) else str(weekday),
        "term_name": term.get("name", f"term {slot.get('term_id')}"),
    }


# ---- courses ----


@bp.get("")
def index() -> ResponseReturnValue:
    api = user_api()
    courses = sorted(api.courses(), key=lambda c: str(c.get("code", "")))
    terms = {int(t["id"]): t for t in api.terms()}
    lines = [{**c, "slots": [_slot_line(s, terms) for s in api.slots(int(c["id"]))]} for c in courses]
    return render_template("timetable.html", courses=lines, has_terms=bool(terms))


@bp.post("/courses")
def create_course() -> ResponseReturnValue:
    _manager()
    code, name = request.form.get("code", "").strip(), request.form.get("name", "").strip()
    if not code or not name:
        flash("A course needs a code and a name.", "error")
        return redirect(url_for("timetable.index"), 303)
    try:
        course = user_api().create_course(code, name)
    except ApiRefusedError as error:
        flash(f"Course not created: {_refusal(error)}", "error")
        return redirect(url_for("timetable.index"), 303)
    flash(f"Course {course['code']} created: now give it a roster and its weekly slots.", "ok")
    return redirect(url_for("timetable.course", course_id=course["id"]), 303)


@bp.get("/courses/<int:course_id>")
def course(course_id: int) -> ResponseReturnValue:
    api = user_api()
    found = [c for c in api.courses() if int(c["id"]) == course_id]
    if not found:
        abort(404, description=f"Course {course_id} does not exist, or is not one of yours.")
    terms = api.terms()
    by_id = {int(t["id"]): t for t in terms}
    user = identity.current_user()
    manager = bool(user and user.can("timetable.manage"))
    roster_ids = set(found[0].get("student_ids") or [])
    students = _all_students(api)
    return render_template(
        "timetable_course.html",
        course=found[0],
        slots=[_slot_line(s, by_id) for s in api.slots(course_id)],
        terms=terms,
        weekdays=list(enumerate(WEEKDAYS)),
        cameras=api.cameras(),
        roster=[s for s in students if s.get("id") in roster_ids],
        students=students if manager else [],
        roster_ids=roster_ids,
    )


@bp.post("/courses/<int:course_id>/roster")
def set_roster(course_id: int) -> ResponseReturnValue:
    _manager()
    student_ids = sorted({v for v in request.form.getlist("student_ids", type=int) if v > 0})
    try:
        course = user_api().set_roster(course_id, student_ids)
    except ApiRefusedError as error:
        flash(f"Roster not changed: {_refusal(error)}", "error")
    else:
        flash(f"{course.get('code', course_id)} has {len(course.get('student_ids', []))} student(s).", "ok")
    return redirect(url_for("timetable.course", course_id=course_id), 303)


@bp.post("/courses/<int:course_id>/late-after")
def set_late_after(course_id: int) -> ResponseReturnValue:
    _manager()
    raw = request.form.get("minutes", "").strip()
    if raw and not raw.isdigit():
        flash("Late after: a whole number of minutes, or empty for the school's default.", "error")
        return redirect(url_for("timetable.course", course_id=course_id), 303)
    try:
        course = user_api().set_course_late_after(course_id, int(raw) if raw else None)
    except ApiRefusedError as error:
        flash(f"Grace not changed: {_refusal(error)}", "error")
    else:
        minutes = course.get("late_after_min")
        said = "the school's default" if minutes is None else f"{minutes} minutes after the start"
        flash(f"{course.get('code', course_id)}: late from {said}.", "ok")
    return redirect(url_for("timetable.course", course_id=course_id), 303)


@bp.post("/courses/<int:course_id>/slots")
def add_slot(course_id: int) -> ResponseReturnValue:
    _manager()
    form = request.form
    body = {
        "term_id": form.get("term_id", type=int),
        "camera_id": form.get("camera_id", "").strip(),
        "weekday": form.get("weekday", type=int),
        "starts_time": form.get("starts_time", "").strip(),
        "ends_time": form.get("ends_time", "").strip(),
    }
    if any(value in (None, "") for value in body.values()):
        flash("A slot needs a term, a camera, a weekday, a start and an end.", "error")
        return redirect(url_for("timetable.course", course_id=course_id), 303)
    try:
        slot = user_api().create_slot(course_id, body)
    except ApiRefusedError as error:
        flash(f"Slot not added: {_refusal(error)}", "error")
    else:
        flash(
            f"Slot added: {WEEKDAYS[int(slot['weekday'])]}s {slot['starts_time']}-{slot['ends_time']} "
            f"on camera {slot['camera_id']}. Its sessions are on the Sessions page.",
            "ok",
        )
    return redirect(url_for("timetable.course", course_id=course_id), 303)


@bp.post("/courses/<int:course_id>/slots/<int:slot_id>/delete")
def delete_slot(course_id: int, slot_id: int) -> ResponseReturnValue:
    _manager()
    try:
        user_api().delete_slot(course_id, slot_id)
    except ApiRefusedError as error:
        flash(f"Slot not removed: {_refusal(error)}", "error")
    else:
        flash("Slot removed: its sessions still to come are gone; those that happened stay.", "ok")
    return redirect(url_for("timetable.course", course_id=course_id), 303)


# ---- terms and holidays ----


@bp.get("/terms")
def terms() -> ResponseReturnValue:
    api = user_api()
    return render_template("timetable_terms.html", terms=api.terms(), holidays=api.holidays())


def _day_span(kind: str) -> tuple[str, str, str] | None:
    name = request.form.get("name", "").strip()
    first = request.form.get("first_day", "").strip()
    last = request.form.get("last_day", "").strip() or first
    if not name or not first:
        flash(f"A {kind} needs a name and a first day.", "error")
        return None
    return name, first, last


@bp.post("/terms")
def create_term() -> ResponseReturnValue:
    _manager()
    span = _day_span("term")
    if span:
        try:
            term = user_api().create_term(*span)
        except ApiRefusedError as error:
            flash(f"Term not added: {_refusal(error)}", "error")
        else:
            flash(f"Term {term['name']} added.", "ok")
    return redirect(url_for("timetable.terms"), 303)


@bp.post("/holidays")
def create_holiday() -> ResponseReturnValue:
    _manager()
    span = _day_span("holiday")
    if span:
        try:
            holiday = user_api().create_holiday(*span)
        except ApiRefusedError as error:
            flash(f"Holiday not added: {_refusal(error)}", "error")
        else:
            flash(f"Holiday {holiday['name']} added: no lessons from {span[1]} to {span[2]}.", "ok")
    return redirect(url_for("timetable.terms"), 303)


@bp.post("/holidays/<int:holiday_id>/delete")
def delete_holiday(holiday_id: int) -> ResponseReturnValue:
    _manager()
    try:
        user_api().delete_holiday(holiday_id)
    except ApiRefusedError as error:
        flash(f"Holiday not removed: {_refusal(error)}", "error")
    else:
        flash("Holiday removed: its days' lessons are back.", "ok")
    return redirect(url_for("timetable.terms"), 303)
