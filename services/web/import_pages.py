"""Roster imports (admins): upload a CSV of students and a ZIP of their photos, read the
preview row by row (create, update, unchanged, refused and why), apply it, follow the
progress. The API does the work (docs/api-contract.md, "Roster imports"); these pages send
the files on, show its verdicts and poll its job while it runs (static/import.js)."""

import logging
from typing import Any

from flask import Blueprint, Response, flash, jsonify, redirect, render_template, request, url_for
from flask.typing import ResponseReturnValue
from werkzeug.datastructures import FileStorage

from services.web import identity, views
from services.web.api_client import ApiRefusedError
from services.web.context import user_api, web

logger = logging.getLogger(__name__)

bp = Blueprint("imports", __name__, url_prefix="/imports")

PERMISSION = "students.import"
RUNNING = ("checking", "applying")
STATE_WORDS = {
    "checking": "checking photos",
    "ready": "preview ready: nothing written yet",
    "applying": "applying",
    "applied": "applied",
    "failed": "failed",
    "discarded": "discarded",
}
VERDICT_WORDS = {"create": "create", "update": "update", "unchanged": "unchanged", "refuse": "refused"}


def _file(storage: FileStorage | None, kind: str) -> tuple[str, Any, str] | None:
    """(filename, stream, type) of a chosen file; None for a form's empty file field."""
    if storage is None or not storage.filename:
        return None
    return storage.filename, storage.stream, storage.mimetype or kind


def _job_view(job: dict[str, Any]) -> dict[str, Any]:
    tz = web().settings.tz
    total, processed = int(job.get("total") or 0), int(job.get("processed") or 0)
    return {
        **job,
        "state_word": STATE_WORDS.get(str(job.get("state")), str(job.get("state"))),
        "running": job.get("state") in RUNNING,
        "percent": round(100 * processed / total) if total else 100,
        "created": views.local_datetime(job.get("created_at"), tz),
        "finished": views.local_datetime(job.get("finished_at"), tz) if job.get("finished_at") else "",
    }


@bp.get("")
def index() -> str:
    identity.require(PERMISSION)
    jobs = [_job_view(job) for job in user_api().imports()]
    return render_template("imports.html", jobs=jobs)


@bp.post("")
def upload() -> ResponseReturnValue:
    identity.require(PERMISSION)
    roster = _file(request.files.get("roster"), "text/csv")
    if roster is None:
        flash("Choose the CSV of students to import.", "error")
        return redirect(url_for("imports.index"))
    photos = _file(request.files.get("photos"), "application/zip")
    try:
        job = user_api().create_import(roster, photos)
    except ApiRefusedError as error:
        if error.status != 422:
            raise
        flash(f"Not imported: {error.detail}", "error")
        return redirect(url_for("imports.index"))
    return redirect(url_for("imports.show", import_id=job["id"]))


@bp.get("/<int:import_id>")
def show(import_id: int) -> str:
    identity.require(PERMISSION)
    job = _job_view(user_api().import_job(import_id))
    rows = job.get("rows") or []
    shown = request.args.get("show", "all")
    if shown == "refused":
        rows = [row for row in rows if row.get("verdict") == "refuse" or row.get("outcome") == "refused"]
    return render_template(
        "import.html",
        job=job,
        rows=rows,
        shown=shown,
        verdict_words=VERDICT_WORDS,
        applied=bool(job.get("applied_at")),
    )


@bp.get("/<int:import_id>/state.json")
def state(import_id: int) -> Response:
    """The job's state and progress, without its rows, for the page to poll."""
    identity.require(PERMISSION)
    job = user_api().import_job(import_id, rows=False)
    view = _job_view(job)
    response = jsonify(
        id=job["id"],
        state=job["state"],
        state_word=view["state_word"],
        processed=job["processed"],
        total=job["total"],
        percent=view["percent"],
        error=job.get("error", ""),
        verdicts=job.get("verdicts", {}),
        outcomes=job.get("outcomes", {}),
    )
    response.headers["Cache-Control"] = "no-store"
    return response


@bp.post("/<int:import_id>/apply")
def apply(import_id: int) -> ResponseReturnValue:
    identity.require(PERMISSION)
    try:
        user_api().apply_import(import_id)
    except ApiRefusedError as error:
        if error.status != 409:
            raise
        flash(f"Not applied: {error.detail}", "error")
    return redirect(url_for("imports.show", import_id=import_id))


@bp.post("/<int:import_id>/discard")
def discard(import_id: int) -> ResponseReturnValue:
    identity.require(PERMISSION)
    try:
        user_api().discard_import(import_id)
    except ApiRefusedError as error:
        if error.status != 409:
            raise
        flash(f"Not discarded: {error.detail}", "error")
        return redirect(url_for("imports.show", import_id=import_id))
    flash(f"Import {import_id} discarded: nothing was written, its photos are erased.", "ok")
    return redirect(url_for("imports.index"))
