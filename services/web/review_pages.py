"""A session's review queue (docs/attendance-record.md, "Review queue"): the faces the system
would not name or named on thin evidence, one item per track with its crops, and what a person
decides about each ("this is <student>", "not a student", "not this person"). Viewers read it;
admins and the session's teacher act (the API decides, this page only hides the forms)."""

import logging
from typing import Any

from flask import Blueprint, Response, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.exceptions import BadRequest

from services.web import identity, views
from services.web.api_client import ApiRefusedError
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("review", __name__, url_prefix="/sessions")

# The page's filter: "open" waits for a person; "done" is every decided item.
FILTERS = {"open": ("open",), "done": ("assigned", "dismissed", "undone")}
STATE_WORDS = {
    "open": "waiting",
    "assigned": "identified",
    "dismissed": "not a student",
    "undone": "not this person",
}
MAX_REASON = 500


def _item_view(item: dict[str, Any], tz: Any) -> dict[str, Any]:
    candidate = item.get("candidate") or None
    distance = item.get("best_distance")
    return {
        **item,
        "candidate": candidate,
        "distance": f"{float(distance):.3f}" if distance is not None else "",
        "first_seen": views.local_datetime(item.get("first_seen_at"), tz),
        "last_seen": views.local_datetime(item.get("last_seen_at"), tz),
        "resolved": views.local_datetime(item.get("resolved_at"), tz) if item.get("resolved_at") else "",
        "state_word": STATE_WORDS.get(str(item.get("state")), str(item.get("state"))),
    }


@bp.get("/<int:session_id>/review")
def show(session_id: int) -> str:
    shown = request.args.get("state", "open")
    if shown not in FILTERS:
        raise BadRequest(f"Not a filter: {shown!r} (open or done).")
    api, tz = user_api(), web().settings.tz
    attendance = api.session_attendance(session_id)
    items: list[dict[str, Any]] = []
    counts: dict[str, int] = {}
    for state in FILTERS[shown]:
        answer = api.review_items(session_id, state=state)
        counts = answer.get("counts", counts)
        items.extend(answer.get("items", []))
    items.sort(key=lambda item: str(item.get("last_seen_at", "")), reverse=True)
    students = {s["student_id"]: s for s in attendance.get("students", [])}
    return render_template(
        "review.html",
        session=views.session_summary(attendance["session"], tz),
        items=[_item_view(item, tz) for item in items],
        roster=sorted(students.values(), key=lambda s: str(s.get("student_name", ""))),
        students=students,
        counts=counts,
        shown=shown,
        max_reason=MAX_REASON,
    )


@bp.get("/<int:session_id>/review/crops/<int:crop_id>.jpg")
def crop(session_id: int, crop_id: int) -> Response:
    """A face crop, asked of the API with the person's own token (it refuses whoever may not see
    the crop's session); never kept by the browser or a proxy: it is biometric data."""
    jpeg = user_api().review_crop(crop_id)
    return Response(jpeg, mimetype="image/jpeg", headers={"Cache-Control": "no-store, private"})


@bp.post("/<int:session_id>/review/<int:item_id>/<any(assign, dismiss, undo):action>")
def act(session_id: int, item_id: int, action: str) -> ResponseReturnValue:
    identity.require("attendance.correct")
    back = redirect(url_for("review.show", session_id=session_id, _anchor=f"item-{item_id}"))
    body: dict[str, Any] = {}
    reason = request.form.get("reason", "").strip()[:MAX_REASON]
    if reason:
        body["reason"] = reason
    if action == "assign":
        try:
            body["student_id"] = int(request.form.get("student_id", ""))
        except ValueError:
            flash("Choose the student this is: nothing was changed.", "error")
            return back
        body["enroll"] = request.form.get("enroll") == "on"
    try:
        outcome = user_api().review_action(item_id, action, body)
    except ApiRefusedError as error:
        if error.status not in (404, 409, 422):
            raise
        flash(f"Not done: {error.detail}", "error")
        return back
    flash(_said(action, outcome), "ok")
    return back


def _said(action: str, outcome: dict[str, Any]) -> str:
    if action == "dismiss":
        return "Dismissed: not a student, nobody marked."
    words = views.STATUS_WORDS
    changes = [
        f"{words.get(m.get('from_status'), 'no mark')} -> {words.get(m.get('to_status'), m.get('to_status'))}"
        for m in outcome.get("marks", [])
        if m.get("action") != "unchanged"
    ]
    said = ("Identified" if action == "assign" else "Undone: not this person") + (
        f" ({'; '.join(changes)})." if changes else "."
    )
    enrollment = outcome.get("enrollment")
    if enrollment:
        said += " A crop was added as an enrollment photo."
    return said
