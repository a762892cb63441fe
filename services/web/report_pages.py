"""Reports (docs/attendance-record.md, "Reports"): a course over a term (a table per session,
the students below a threshold, a chart drawn here as SVG), a student over a range of days,
a session's roll; each with its CSV, fetched from the API by this server and passed on as it
is (the API makes its cells safe for spreadsheets).

Every call is made with the signed-in person's token: the API decides who sees what (a
teacher only their courses) and its refusals (403, 404, 422) are shown on the page as
messages, next to the form to choose again. Reports only read: viewers see them all."""

import logging
from collections.abc import Callable
from typing import Any

from flask import Blueprint, Response, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue

from services.web import report_chart, report_views, views
from services.web.api_client import ApiClient, ApiRefusedError, Download
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("reports", __name__, url_prefix="/reports")

# The API's refusals a report page shows as a message (anything else is the app's error page).
SHOWN = (403, 404, 422)
# The chart is an image of its own: it never runs anything, even opened on its own (no script
# can load; matplotlib's one inline <style> is allowed), and is not kept by shared caches.
SVG_HEADERS = {
    "Content-Security-Policy": "default-src 'none'; style-src 'unsafe-inline'",
    "Cache-Control": "private, no-cache",
}


def _csv(download: Download) -> Response:
    return Response(
        download.content,
        mimetype="text/csv",
        headers={"Content-Disposition": f'attachment; filename="{download.filename}"'},
    )


def _refused_as_json(error: ApiRefusedError) -> ResponseReturnValue:
    """An image's or a CSV's refusal for a wrong input: the API's reason and status, as JSON (the
    app's own handler already answers 403 and 404 so; any other is the API's fault, a 502)."""
    if error.status != 422:
        raise error
    return jsonify(detail=error.detail), 422


def _asked(call: Callable[[], dict[str, Any]]) -> tuple[dict[str, Any] | None, str, int]:
    """The API's answer, or None with its refusal's reason and status (a page shows them)."""
    try:
        return call(), "", 200
    except ApiRefusedError as error:
        if error.status not in SHOWN:
            raise
        return None, error.detail, error.status


def _choices(api: ApiClient) -> dict[str, Any]:
    """The picker's courses (a teacher's own only: the API filters) and terms, latest first."""
    return {"courses": api.courses(), "terms": api.terms()}


@bp.get("")
def index() -> str:
    return render_template("reports.html", **_choices(user_api()), chosen={}, error="")


@bp.get("/course")
def pick_course() -> ResponseReturnValue:
    """The picker's form: on to the report's own URL (a link one can keep), or back with why not."""
    api = user_api()
    chosen = {key: request.args.get(key, "").strip() for key in ("course_id", "term_id", "threshold")}
    try:
        course_id, term_id = int(chosen["course_id"]), int(chosen["term_id"])
    except ValueError:
        return render_template("reports.html", **_choices(api), chosen=chosen,
                               error="Choose a course and a term."), 422  # fmt: skip
    try:
        report_views.parse_threshold(chosen["threshold"])
    except ValueError:
        return render_template("reports.html", **_choices(api), chosen=chosen,
                               error="The threshold is a percent, from 0 to 100."), 422  # fmt: skip
    threshold = chosen["threshold"] or None  # url_for leaves a None parameter out
    return redirect(url_for("reports.course", course_id=course_id, term_id=term_id, threshold=threshold))


def _threshold() -> tuple[float | None, str]:
    given = request.args.get("threshold", "")
    try:
        return report_views.parse_threshold(given), ""
    except ValueError:
        return None, f"Not a percent: {given.strip()!r}; the threshold is from 0 to 100."


@bp.get("/courses/<int:course_id>/terms/<int:term_id>")
def course(course_id: int, term_id: int) -> ResponseReturnValue:
    api, tz = user_api(), web().settings.tz
    chosen = {
        "course_id": str(course_id),
        "term_id": str(term_id),
        "threshold": request.args.get("threshold", ""),
    }
    threshold, error = _threshold()
    report: dict[str, Any] | None = None
    status = 422 if error else 200
    if not error:
        report, error, status = _asked(lambda: api.course_report(course_id, term_id, threshold))
    view = report_views.course_report(report, tz) if report else None
    if view:
        first, last = report_views.term_days_until(view["term"], views.today(tz))
        view["student_range"] = {"start": first, "end": last}
    query = {"threshold": chosen["threshold"]} if chosen["threshold"].strip() and not error else {}
    page = render_template("report_course.html", **_choices(api), chosen=chosen, error=error, report=view,
                           query=query, course_id=course_id, term_id=term_id)  # fmt: skip
    return page, status


@bp.get("/courses/<int:course_id>/terms/<int:term_id>/chart.svg")
def course_chart(course_id: int, term_id: int) -> ResponseReturnValue:
    threshold, error = _threshold()
    if error:
        return jsonify(detail=error), 422
    try:
        report = user_api().course_report(course_id, term_id, threshold)
    except ApiRefusedError as refused:
        return _refused_as_json(refused)
    tz = web().settings.tz
    svg = report_chart.session_rates_svg(
        report_views.chart_title(report),
        report_views.chart_bars(report, tz),
        float(report.get("threshold_percent", 0)),
    )
    return Response(svg, mimetype="image/svg+xml", headers=SVG_HEADERS)


@bp.get("/courses/<int:course_id>/terms/<int:term_id>.csv")
def course_csv(course_id: int, term_id: int) -> ResponseReturnValue:
    threshold, error = _threshold()
    if error:
        return jsonify(detail=error), 422
    try:
        return _csv(user_api().course_report_csv(course_id, term_id, threshold))
    except ApiRefusedError as refused:
        return _refused_as_json(refused)


# ---- a session's roll ----


@bp.get("/sessions/<int:session_id>")
def session(session_id: int) -> ResponseReturnValue:
    report, error, status = _asked(lambda: user_api().session_report(session_id))
    view = report_views.session_report(report, web().settings.tz) if report else None
    return render_template("report_session.html", report=view, error=error, session_id=session_id), status


@bp.get("/sessions/<int:session_id>.csv")
def session_csv(session_id: int) -> Response:
    return _csv(user_api().session_report_csv(session_id))


# ---- a student over a range of days ----


def _range() -> tuple[dict[str, str], dict[str, str], str]:
    """The form's days as given, those to send (valid ones only), and what is wrong with them."""
    given = {key: request.args.get(key, "").strip() for key in ("start", "end")}
    sent: dict[str, str] = {}
    for key, value in given.items():
        try:
            day = report_views.parse_day(value)
        except ValueError:
            return given, {}, f"Not a day: {value!r} (expected YYYY-MM-DD)."
        if day:
            sent[key] = day
    return given, sent, ""


@bp.get("/students/<int:student_id>")
def student(student_id: int) -> ResponseReturnValue:
    given, sent, error = _range()
    report: dict[str, Any] | None = None
    status = 422 if error else 200
    if not error:
        report, error, status = _asked(lambda: user_api().student_report(student_id, **sent))
    view = report_views.student_report(report, web().settings.tz) if report else None
    if view:  # the form shows the range the API chose (its default: the last 30 days)
        given = {"start": view["start"], "end": view["end"]}
    return render_template("report_student.html", report=view, error=error, student_id=student_id,
                           chosen=given, query=sent), status  # fmt: skip


@bp.get("/students/<int:student_id>.csv")
def student_csv(student_id: int) -> ResponseReturnValue:
    _, sent, error = _range()
    if error:
        return jsonify(detail=error), 422
    try:
        return _csv(user_api().student_report_csv(student_id, **sent))
    except ApiRefusedError as refused:
        return _refused_as_json(refused)
