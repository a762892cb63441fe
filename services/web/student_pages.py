"""Students: the list (search, photo counts), enrollment with photos, a student's page, deletion.

Adding a student is two API calls (POST /students, then POST /students/{id}/photos); the
page that answers the form shows what became of each photo, with the API's reason for each
one it refused. Answering directly (no redirect) keeps those per-photo results out of the
cookie; a resubmitted form is harmless (a duplicate number is refused, a photo sent twice is
stored once).

Who may do what (identity.PERMISSIONS): adding and deleting students is an admin's, adding
photos and recording or withdrawing consent also a teacher's (for the students on their
courses; the API checks which); a viewer only reads. The forms a role may not use are not
shown, and their URLs answer 403.

Consent to biometric processing (README, Security): the add form has a checkbox and a note;
the student's page shows whether it is recorded (by whom, when), offers the upload only when
it is, and withdraws it after a confirmation, saying what the API erased and kept.
"""

import logging
from typing import Any

from flask import Blueprint, flash, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from services.web import identity, views
from services.web.api_client import ApiRefusedError, ApiUnreachableError, PhotoUpload
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("students", __name__, url_prefix="/students")

PAGE_SIZE = 50
# Beyond any real list; a page number past it (say 10**20) is read as this one, not sent on.
MAX_PAGE = 1_000_000


def _photos(files: list[FileStorage]) -> list[tuple[str, bytes, str]]:
    """The files actually chosen (a form with none still sends one empty part)."""
    return [
        (f.filename, f.read(), f.mimetype or "application/octet-stream")
        for f in files
        if f.filename  # an empty part, when no file was chosen
    ]


def _list_page(form: dict[str, str] | None = None, status: int = 200) -> ResponseReturnValue:
    query = request.args.get("q", "").strip()
    page = max(1, min(request.args.get("page", 1, type=int) or 1, MAX_PAGE))
    result = user_api().students(query=query, page=page, page_size=PAGE_SIZE)
    total = int(result.get("total", 0))
    return (
        render_template(
            "students.html",
            students=result.get("items", []),
            total=total,
            query=query,
            page=page,
            pages=views.page_count(total, PAGE_SIZE),
            form=form or {},
        ),
        status,
    )


def _student_page(
    student_id: int, upload: PhotoUpload | None = None, upload_error: str = "", status: int = 200
) -> ResponseReturnValue:
    api = user_api()
    student = api.student(student_id)
    tz = web().settings.tz
    marks: list[dict[str, Any]] = []
    try:
        marks = api.student_attendance(student_id)[-20:]
    except ApiRefusedError as error:  # the history is a bonus; the page stays useful without it
        logger.warning("attendance of student %d: %s", student_id, error)
    history = [
        {
            "session_id": m.get("session_id"),
            "session_name": m.get("session_name", ""),
            "camera_id": m.get("camera_id", ""),
            "status": m.get("status", ""),
            "first_seen": views.local_datetime(m.get("first_seen_at"), tz),
        }
        for m in reversed(marks)
    ]
    consent_at = views.local_datetime(student.get("consent_at"), tz)
    return (
        render_template(
            "student.html",
            student=student,
            consent_at=consent_at,
            upload=upload,
            upload_error=upload_error,
            history=history,
        ),
        status,
    )


@bp.get("")
def index() -> ResponseReturnValue:
    return _list_page()


@bp.post("")
def create() -> ResponseReturnValue:
    identity.require("students.create")
    form = {
        "student_number": request.form.get("student_number", "").strip(),
        "name": request.form.get("name", "").strip(),
        "consent": "on" if request.form.get("consent") else "",
        "consent_note": request.form.get("consent_note", "").strip(),
    }
    if not form["student_number"] or not form["name"]:
        flash("A student needs a number and a name.", "error")
        return _list_page(form, 400)
    photos = _photos(request.files.getlist("photos"))
    try:
        student = user_api().create_student(
            form["student_number"], form["name"], bool(form["consent"]), form["consent_note"]
        )
    except ApiRefusedError as error:
        if error.status not in (409, 422):
            raise
        flash(f"Student not added: {error.detail}", "error")
        return _list_page(form, error.status)
    logger.info("added student %s with %d photo(s) to check", student["id"], len(photos))
    flash(f"Added {student['name']} ({student['student_number']}).", "ok")
    return _upload(int(student["id"]), photos)


def _upload(student_id: int, photos: list[tuple[str, bytes, str]]) -> ResponseReturnValue:
    if not photos:
        return _student_page(student_id)
    try:
        upload = user_api().add_photos(student_id, photos)
    except (ApiRefusedError, ApiUnreachableError) as error:
        # The student exists; say why the photos are missing rather than losing the page.
        return _student_page(student_id, upload_error=f"Photos not added: {error}")
    # Show the photos in the order they were chosen, each with its outcome.
    order = {name: index for index, (name, _, _) in reversed(list(enumerate(photos)))}
    outcomes = sorted(upload.outcomes, key=lambda o: order.get(o.filename, len(order)))
    upload = PhotoUpload(outcomes, upload.photo_count)
    refused = sum(1 for o in upload.outcomes if not o.accepted)
    if refused:
        flash(f"{refused} of {len(upload.outcomes)} photo(s) refused: see the reasons below.", "error")
    return _student_page(student_id, upload=upload)


@bp.get("/<int:student_id>")
def show(student_id: int) -> ResponseReturnValue:
    return _student_page(student_id)


@bp.post("/<int:student_id>/photos")
def add_photos(student_id: int) -> ResponseReturnValue:
    identity.require("students.enroll")
    photos = _photos(request.files.getlist("photos"))
    if not photos:
        flash("Choose at least one photo.", "error")
        return _student_page(student_id, status=400)
    return _upload(student_id, photos)


@bp.post("/<int:student_id>/consent")
def consent(student_id: int) -> ResponseReturnValue:
    """Record consent (given=1, with a note) or withdraw it (given=0, after the page's confirmation)."""
    identity.require("students.consent")
    given = request.form.get("given") == "1"
    note = request.form.get("note", "").strip()
    if not request.form.get("confirm"):  # both forms have a box to tick: neither is a slip of the mouse
        flash(
            "Tick the box to confirm that consent was given."
            if given
            else "Tick the box to confirm that the photos and face data are to be erased.",
            "error",
        )
        return _student_page(student_id, status=400)
    try:
        answer = user_api().set_consent(student_id, given, note)
    except ApiRefusedError as error:
        if error.status != 422:
            raise
        flash(f"Consent not changed: {error.detail}", "error")
        return _student_page(student_id, status=422)
    erased = answer.get("erased", {})
    if answer.get("action") == "given":
        flash("Consent recorded: photos can be enrolled.", "ok")
    elif answer.get("action") == "withdrawn":
        flash(
            f"Consent withdrawn: {erased.get('photos', 0)} photo(s) with their face data and "
            f"{erased.get('review_crops', 0)} review crop(s) erased; {answer.get('kept', '')}.",
            "ok",
        )
    else:
        flash(
            "Nothing changed." if given else "No consent was recorded and there was nothing to erase.", "ok"
        )
    return redirect(url_for("students.show", student_id=student_id))


@bp.get("/<int:student_id>/delete")
def confirm_delete(student_id: int) -> ResponseReturnValue:
    identity.require("students.delete")
    return render_template("student_delete.html", student=user_api().student(student_id))


@bp.post("/<int:student_id>/delete")
def delete(student_id: int) -> ResponseReturnValue:
    identity.require("students.delete")
    student = user_api().student(student_id)
    report = user_api().delete_student(student_id)
    logger.info("deleted student %d", student_id)
    erased = report.get("erased", {})
    flash(
        f"Deleted {student['name']} ({student['student_number']}): {erased.get('photos', 0)} photo(s) with "
        f"their face data and {erased.get('review_crops', 0)} face crop(s) erased; {report.get('kept', '')}.",
        "ok",
    )
    return redirect(url_for("students.index"))
