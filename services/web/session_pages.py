"""Sessions: a day's list, one session's attendance table, and its CSV (fetched from the API
by this server, so browsers never need to reach the API)."""

import logging
from datetime import date
from typing import Any

from flask import Blueprint, Response, render_template, request
from werkzeug.exceptions import BadRequest

from services.web import views
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


@bp.get("/<int:session_id>")
def show(session_id: int) -> str:
    attendance = user_api().session_attendance(session_id)
    tz = web().settings.tz
    students = [views.roster_line(s, tz) for s in attendance.get("students", [])]
    return render_template(
        "session.html",
        session=views.session_summary(attendance["session"], tz),
        students=students,
        expected=attendance.get("expected", len(students)),
        present=attendance.get("present", sum(1 for s in students if s["status"] != "not_seen")),
    )


@bp.get("/<int:session_id>/attendance.csv")
def attendance_csv(session_id: int) -> Response:
    download = user_api().session_csv(session_id)
    return Response(
        download.content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )
