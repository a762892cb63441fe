"""Sessions: a day's list, one session's roll (statuses, who set them and why), the forms to
change a status (a correction, an excuse: admins and the course's teachers), the history of
changes, and the CSV (fetched from the API by this server, so browsers never need to reach
the API)."""

import logging
from datetime import date
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from services.web import identity, views
from services.web.api_client import ApiClient, ApiRefusedError
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("sessions", __name__, url_prefix="/sessions")


def _day() -> date:
    given = request.args.get("date", "").strip()
    if not given:
        return views.today(web().settings.tz)
    try:
        return date.fromisoformat(given)
    except ValueError as error:
        raise BadRequest(f"Not a date: {given!r} (expected YYYY-MM-DD).") from error


def _cameras(api: ApiClient) -> list[dict[str, Any]]:
    """The camera filter's choices; without them (a role that may not list cameras) the page still works."""
    try:
        return api.cameras()
    except ApiRefusedError as error:
        if error.status != 403:
            raise
        return []


@bp.get("")
def index() -> str:
    day = _day()
    camera_id = request.args.get("camera_id", "").strip()
    api, tz = user_api(), web().settings.tz
    sessions = [views.session_summary(s, tz) for s in api.sessions(day.isoformat(), camera_id or None)]
    return render_template(
        "sessions.html", sessions=sessions, day=day.isoformat(), camera_id=camera_id, cameras=_cameras(api)
    )


# What a person may set a status to, as the form offers them (the API says the same).
SETTABLE = ("present", "late", "absent", "excused")
MAX_REASON = 500


def _history_line(entry: dict[str, Any], tz: Any) -> dict[str, Any]:
    words = views.STATUS_WORDS
    from_status, to_status = entry.get("from_status"), str(entry.get("to_status", ""))
    return {
        "kind": entry.get("kind", ""),
        "when": views.local_datetime(entry.get("at"), tz),
        "student_name": entry.get("student_name", ""),
        "student_number": entry.get("student_number", ""),
        "from_word": words.get(from_status, from_status) if from_status else "no mark",
        "to_word": words.get(to_status, to_status),
        "to_status": to_status,
        "source": entry.get("source", ""),
        "actor": entry.get("actor", ""),
        "reason": entry.get("reason", ""),
    }


@bp.get("/<int:session_id>")
def show(session_id: int) -> str:
    api = user_api()
    attendance = api.session_attendance(session_id)
    tz = web().settings.tz
    students = [views.roster_line(s, tz) for s in attendance.get("students", [])]
    journal = [_history_line(entry, tz) for entry in reversed(api.session_history(session_id))]
    return render_template(
        "session.html",
        session=views.session_summary(attendance["session"], tz),
        students=students,
        expected=attendance.get("expected", len(students)),
        present=attendance.get("present", sum(1 for s in students if s["status"] != "not_seen")),
        counts={key: attendance.get(key, 0) for key in ("late", "absent", "excused")},
        finalized=bool(attendance.get("finalized")),
        history=journal,
        settable=SETTABLE,
        statuses=views.STATUS_WORDS,
        max_reason=MAX_REASON,
    )


@bp.post("/<int:session_id>/attendance/<int:student_id>")
def set_status(session_id: int, student_id: int) -> ResponseReturnValue:
    """A correction or an excuse from the roll's form; back to the roll, saying what happened."""
    identity.require("attendance.correct")
    status = request.form.get("status", "").strip()
    reason = request.form.get("reason", "").strip()
    back = redirect(url_for("sessions.show", session_id=session_id, _anchor=f"student-{student_id}"))
    if status not in SETTABLE:
        flash(f"Choose a status: {', '.join(SETTABLE)}.", "error")
        return back
    if not reason:
        flash("Say why (every change needs a reason): nothing was changed.", "error")
        return back
    try:
        outcome = user_api().set_status(session_id, student_id, status, reason[:MAX_REASON])
    except ApiRefusedError as error:
        if error.status not in (404, 409, 422):
            raise
        flash(f"Not changed: {error.detail}", "error")
        return back
    word = views.STATUS_WORDS.get(status, status)
    if outcome.get("action") == "unchanged":
        flash(f"Already {word}: nothing changed.", "ok")
    else:
        flash(f"Now {word}.", "ok")
    return back


@bp.get("/<int:session_id>/attendance.csv")
def attendance_csv(session_id: int) -> Response:
    download = user_api().session_csv(session_id)
    return Response(
        download.content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )
