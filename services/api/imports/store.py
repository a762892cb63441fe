"""Import jobs in MySQL (db/migrations/0005_roster_imports.sql): the preview's rows and
verdicts, the staged photos, the progress, and applying one row."""

import json
from dataclasses import dataclass
from datetime import datetime
from typing import Any

import numpy as np
import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.api.accounts import audit
from services.api.accounts.tokens import Principal
from services.api.imports.roster import Decision, Existing, ExistingStudent
from services.api.queries.students import lock_active_student, update_student
from services.common.attendance import as_utc
from services.common.messages import FaceBox
from services.common.students import Consent, create_student, find_student_by_number, give_consent
from services.faces.enrollment import EnrollmentPhoto

# A job that says it runs but has not moved for this long lost its process (a restart).
STALE_AFTER_S = 300
# A preview never applied is discarded after this long, its staged photos erased.
KEEP_HOURS = 24
RUNNING = ("checking", "applying")
INTERRUPTED = "interrupted: the API stopped while it ran"


@dataclass(frozen=True)
class Job:
    id: int
    state: str
    created_by: str
    created_at: datetime
    updated_at: datetime
    csv_filename: str
    zip_filename: str | None
    delimiter: str
    total: int
    processed: int
    notes: dict[str, Any]
    error: str
    applied_by: str | None
    applied_at: datetime | None
    finished_at: datetime | None
    verdicts: dict[str, int]
    outcomes: dict[str, int]


@dataclass(frozen=True)
class JobRow:
    line: int
    student_number: str
    name: str
    course_codes: list[str]
    student_id: int | None
    verdict: str
    reason: str
    changes: list[str]
    photo_name: str | None
    photo_state: str | None
    face_px: int | None
    outcome: str | None
    outcome_reason: str


def _aware(value: datetime | None) -> datetime | None:
    return as_utc(value) if value is not None else None


def existing(connection: Connection) -> Existing:
    """Every active student (number, name, courses, photos) and every course code."""
    courses = {
        str(code).casefold(): str(code)
        for code in connection.execute(sa.text("SELECT code FROM courses")).scalars()
    }
    enrolled: dict[int, set[str]] = {}
    for row in connection.execute(
        sa.text("SELECT cs.student_id, c.code FROM course_students cs JOIN courses c ON c.id = cs.course_id")
    ):
        enrolled.setdefault(int(row.student_id), set()).add(str(row.code).casefold())
    students = {}
    for row in connection.execute(
        sa.text(
            "SELECT s.id, s.student_number, s.name, s.consent_at, "
            "(SELECT COUNT(*) FROM face_encodings f WHERE f.student_id = s.id) AS photos "
            "FROM students s WHERE s.deleted_at IS NULL"
        )
    ):
        codes = frozenset(enrolled.get(int(row.id), set()))
        students[str(row.student_number).casefold()] = ExistingStudent(
            int(row.id), str(row.name), codes, int(row.photos), has_consent=row.consent_at is not None
        )
    return Existing(students, courses)


def create_job(
    connection: Connection,
    principal: Principal,
    *,
    csv_filename: str,
    zip_filename: str | None,
    delimiter: str,
    decisions: list[Decision],
    notes: dict[str, Any],
) -> int:
    pending = sum(1 for d in decisions if d.photo_name and d.verdict != "refuse")
    result = connection.execute(
        sa.text(
            "INSERT INTO roster_imports (created_by, created_by_user_id, state, csv_filename, "
            "zip_filename, delimiter, total, processed, notes) "
            "VALUES (:by, :user, :state, :csv, :zip, :delimiter, :total, 0, :notes)"
        ),
        {
            "by": principal.actor,
            "user": principal.user_id,
            "state": "checking" if pending else "ready",
            "csv": csv_filename[:255],
            "zip": zip_filename[:255] if zip_filename is not None else None,
            "delimiter": delimiter,
            "total": pending,
            "notes": json.dumps(notes),
        },
    )
    job_id = int(result.lastrowid)
    rows = [
        {
            "job": job_id,
            "line": d.row.line,
            "number": d.row.student_number[:200],
            "name": d.row.name[:300],
            "codes": " ".join(d.course_codes or d.row.course_codes)[:1000],
            "consent": d.row.consent,
            "student": d.student_id,
            "verdict": d.verdict,
            "reason": d.reason[:500],
            "changes": "; ".join(d.changes)[:500],
            "photo": d.photo_name[:255] if d.photo_name else None,
            "photo_state": "pending" if d.photo_name and d.verdict != "refuse" else None,
        }
        for d in decisions
    ]
    if rows:
        connection.execute(
            sa.text(
                "INSERT INTO roster_import_rows (import_id, line, student_number, name, course_codes, "
                "consent, student_id, verdict, reason, changes, photo_name, photo_state) VALUES (:job, "
                ":line, :number, :name, :codes, :consent, :student, :verdict, :reason, :changes, :photo, "
                ":photo_state)"
            ),
            rows,
        )
    audit.record(
        connection,
        principal,
        "import.create",
        "roster_import",
        job_id,
        detail=f"{len(rows)} row(s), {pending} photo(s) to check",
    )
    return job_id


def pending_photos(connection: Connection, job_id: int) -> list[tuple[int, str]]:
    """(line, ZIP member) of every row whose photo waits to be checked, in line order."""
    rows = connection.execute(
        sa.text(
            "SELECT line, photo_name FROM roster_import_rows WHERE import_id = :job "
            "AND photo_state = 'pending' ORDER BY line"
        ),
        {"job": job_id},
    )
    return [(int(r.line), str(r.photo_name)) for r in rows]


def save_photo(
    connection: Connection, job_id: int, line: int, photo: EnrollmentPhoto | None, reason: str
) -> None:
    """One photo checked: staged (accepted) or its row refused with the reason; one step done."""
    if photo is not None:
        box = photo.box
        connection.execute(
            sa.text(
                "UPDATE roster_import_rows SET photo_state = 'accepted', face_px = :px, photo = :jpeg, "
                "photo_sha256 = :sha, encoding = :encoding, face_top = :top, face_right = :right, "
                "face_bottom = :bottom, face_left = :left WHERE import_id = :job AND line = :line"
            ),
            {
                "px": photo.face_px,
                "jpeg": photo.jpeg,
                "sha": photo.sha256,
                "encoding": np.asarray(photo.encoding, dtype="<f8").tobytes(),
                "top": box.top,
                "right": box.right,
                "bottom": box.bottom,
                "left": box.left,
                "job": job_id,
                "line": line,
            },
        )
    else:
        connection.execute(
            sa.text(
                "UPDATE roster_import_rows SET photo_state = 'refused', verdict = 'refuse', changes = '', "
                "reason = :reason WHERE import_id = :job AND line = :line"
            ),
            {"reason": reason[:500], "job": job_id, "line": line},
        )
    step(connection, job_id)


def step(connection: Connection, job_id: int, steps: int = 1) -> None:
    connection.execute(
        sa.text(
            "UPDATE roster_imports SET processed = processed + :steps, updated_at = CURRENT_TIMESTAMP(6) "
            "WHERE id = :job"
        ),
        {"steps": steps, "job": job_id},
    )


def set_state(
    connection: Connection, job_id: int, state: str, error: str = "", *, finished: bool = False
) -> None:
    connection.execute(
        sa.text(
            "UPDATE roster_imports SET state = :state, error = :error, updated_at = CURRENT_TIMESTAMP(6), "
            "finished_at = IF(:finished, CURRENT_TIMESTAMP(6), finished_at) WHERE id = :job"
        ),
        {"state": state, "error": error[:500], "finished": finished, "job": job_id},
    )


def start_apply(connection: Connection, job_id: int, principal: Principal) -> int:
    """The job turns `applying`; its progress counts the rows left to apply. Returns them."""
    left = int(
        connection.execute(
            sa.text(
                "SELECT COUNT(*) FROM roster_import_rows WHERE import_id = :job AND verdict <> 'refuse' "
                "AND outcome IS NULL"
            ),
            {"job": job_id},
        ).scalar_one()
    )
    connection.execute(
        sa.text(
            "UPDATE roster_imports SET state = 'applying', error = '', total = :total, processed = 0, "
            "applied_by = :by, applied_at = COALESCE(applied_at, CURRENT_TIMESTAMP(6)), "
            "updated_at = CURRENT_TIMESTAMP(6) WHERE id = :job"
        ),
        {"total": left, "by": principal.actor, "job": job_id},
    )
    return left


def rows_to_apply(connection: Connection, job_id: int, limit: int) -> list[sa.Row[Any]]:
    """The next rows without an outcome, staged photo included, in line order."""
    return list(
        connection.execute(
            sa.text(
                "SELECT line, student_number, name, course_codes, consent, student_id, verdict, photo_state, "
                "photo, photo_sha256, encoding, face_top, face_right, face_bottom, face_left "
                "FROM roster_import_rows WHERE import_id = :job AND verdict <> 'refuse' "
                "AND outcome IS NULL ORDER BY line LIMIT :limit"
            ),
            {"job": job_id, "limit": limit},
        )
    )


class RowRefusedError(Exception):
    """The row cannot be applied as previewed (the school changed meanwhile)."""


def staged_photo(row: sa.Row[Any]) -> EnrollmentPhoto | None:
    if row.photo_state != "accepted" or row.photo is None:
        return None
    box = FaceBox(top=row.face_top, right=row.face_right, bottom=row.face_bottom, left=row.face_left)
    encoding = np.frombuffer(row.encoding, dtype="<f8")
    return EnrollmentPhoto(bytes(row.photo), str(row.photo_sha256), box, encoding)


def apply_row(
    connection: Connection, job_id: int, row: sa.Row[Any], principal: Principal
) -> tuple[int, str, bool]:
    """Create or update the row's student and add them to its courses, in the caller's
    transaction with their audit entries; (the student's id, the outcome, whether the staged
    photo is to be stored). Raises RowRefusedError if the preview no longer holds."""
    number, name = str(row.student_number), str(row.name)
    source = f"roster import {job_id}"
    codes = [code for code in str(row.course_codes).split() if code]
    course_ids = _course_ids(connection, codes)
    current = find_student_by_number(connection, number)
    changed: list[str] = []
    if row.verdict == "create":
        if current is not None:
            raise RowRefusedError(
                f"student number {number} was taken after the preview: import the file again"
            )
        student_id = create_student(connection, number, name).id
        audit.record(connection, principal, "student.create", "student", student_id, detail=source)
        changed.extend(_record_consent(connection, row, student_id, principal, source))
    else:
        if current is None or current.id != row.student_id or not lock_active_student(connection, current.id):
            raise RowRefusedError(f"student {number} was deleted or renumbered after the preview")
        student_id = current.id
        if current.name != name:
            update_student(connection, student_id, None, name)
            audit.record(
                connection, principal, "student.change", "student", student_id, detail=f"name ({source})"
            )
            changed.append("name")
        changed.extend(_record_consent(connection, row, student_id, principal, source))
    for code, course_id in course_ids.items():
        added = connection.execute(
            sa.text("INSERT IGNORE INTO course_students (course_id, student_id) VALUES (:course, :student)"),
            {"course": course_id, "student": student_id},
        ).rowcount
        if added:
            audit.record(
                connection,
                principal,
                "course.roster",
                "course",
                course_id,
                detail=f"1 student added ({source})",
            )
            changed.append(code)
    photo = row.photo_state == "accepted"
    if row.verdict == "create":
        return student_id, "created", photo
    return student_id, "updated" if changed or photo else "unchanged", photo


def _record_consent(
    connection: Connection, row: sa.Row[Any], student_id: int, principal: Principal, source: str
) -> list[str]:
    """The row's consent, recorded by whoever applies the import (before its photo is stored)."""
    if not row.consent or not give_consent(connection, student_id, Consent(principal.actor, source)):
        return []
    audit.record(connection, principal, "student.consent", "student", student_id, detail=f"given ({source})")
    return ["consent"]


def _course_ids(connection: Connection, codes: list[str]) -> dict[str, int]:
    if not codes:
        return {}
    query = sa.text("SELECT id, code FROM courses WHERE code IN :codes").bindparams(
        sa.bindparam("codes", expanding=True)
    )
    found = {str(r.code).casefold(): int(r.id) for r in connection.execute(query, {"codes": codes})}
    missing = [code for code in codes if code.casefold() not in found]
    if missing:
        raise RowRefusedError(f"course {', '.join(missing)} was deleted after the preview")
    return {code: found[code.casefold()] for code in codes}


def record_outcome(
    connection: Connection,
    job_id: int,
    line: int,
    outcome: str,
    reason: str = "",
    *,
    student_id: int | None = None,
) -> None:
    connection.execute(
        sa.text(
            "UPDATE roster_import_rows SET outcome = :outcome, outcome_reason = :reason, "
            "student_id = COALESCE(:student, student_id), photo = NULL, encoding = NULL "
            "WHERE import_id = :job AND line = :line"
        ),
        {"outcome": outcome, "reason": reason[:500], "student": student_id, "job": job_id, "line": line},
    )
    step(connection, job_id)


def erase_staged_photos(connection: Connection, job_id: int) -> None:
    connection.execute(
        sa.text("UPDATE roster_import_rows SET photo = NULL, encoding = NULL WHERE import_id = :job"),
        {"job": job_id},
    )


def expire_old(connection: Connection) -> int:
    """Discard previews never applied within KEEP_HOURS (their staged photos erased)."""
    cutoff = f"CURRENT_TIMESTAMP(6) - INTERVAL {KEEP_HOURS} HOUR"
    ids = [
        int(value)
        for value in connection.execute(
            sa.text(
                f"SELECT id FROM roster_imports WHERE state IN ('ready', 'failed') AND updated_at < {cutoff}"
            )
        ).scalars()
    ]
    for job_id in ids:
        erase_staged_photos(connection, job_id)
        set_state(
            connection, job_id, "discarded", f"expired: not applied within {KEEP_HOURS} h", finished=True
        )
    return len(ids)


def mark_stale(connection: Connection, job_id: int | None = None) -> None:
    """Jobs that say they run but have been silent for STALE_AFTER_S lost their process: failed."""
    where = "" if job_id is None else " AND id = :job"
    connection.execute(
        sa.text(
            "UPDATE roster_imports SET state = 'failed', error = :error, updated_at = CURRENT_TIMESTAMP(6) "
            f"WHERE state IN ('checking', 'applying') AND updated_at < CURRENT_TIMESTAMP(6) - INTERVAL "
            f"{STALE_AFTER_S} SECOND{where}"
        ),
        {"error": INTERRUPTED, "job": job_id},
    )


_JOB_COLUMNS = (
    "id, state, created_by, created_at, updated_at, csv_filename, zip_filename, delimiter, total, processed, "
    "notes, error, applied_by, applied_at, finished_at"
)


def get_job(connection: Connection, job_id: int) -> Job | None:
    row = connection.execute(
        sa.text(f"SELECT {_JOB_COLUMNS} FROM roster_imports WHERE id = :job"), {"job": job_id}
    ).first()
    if row is None:
        return None
    verdicts = {
        str(r.verdict): int(r.n)
        for r in connection.execute(
            sa.text(
                "SELECT verdict, COUNT(*) AS n FROM roster_import_rows WHERE import_id = :job "
                "GROUP BY verdict"
            ),
            {"job": job_id},
        )
    }
    outcomes = {
        str(r.outcome): int(r.n)
        for r in connection.execute(
            sa.text(
                "SELECT outcome, COUNT(*) AS n FROM roster_import_rows WHERE import_id = :job "
                "AND outcome IS NOT NULL GROUP BY outcome"
            ),
            {"job": job_id},
        )
    }
    return _job(row, verdicts, outcomes)


def _job(row: sa.Row[Any], verdicts: dict[str, int], outcomes: dict[str, int]) -> Job:
    return Job(
        id=int(row.id),
        state=str(row.state),
        created_by=str(row.created_by),
        created_at=as_utc(row.created_at),
        updated_at=as_utc(row.updated_at),
        csv_filename=str(row.csv_filename),
        zip_filename=row.zip_filename,
        delimiter=str(row.delimiter),
        total=int(row.total),
        processed=int(row.processed),
        notes=json.loads(row.notes) if row.notes else {},
        error=str(row.error),
        applied_by=row.applied_by,
        applied_at=_aware(row.applied_at),
        finished_at=_aware(row.finished_at),
        verdicts={v: verdicts.get(v, 0) for v in ("create", "update", "unchanged", "refuse")},
        outcomes={o: outcomes.get(o, 0) for o in ("created", "updated", "unchanged", "refused")},
    )


def lock_job(connection: Connection, job_id: int) -> Job | None:
    """The job, its row locked for the caller's transaction (two applies cannot both start)."""
    found = connection.execute(
        sa.text("SELECT id FROM roster_imports WHERE id = :job FOR UPDATE"), {"job": job_id}
    ).first()
    return get_job(connection, job_id) if found else None


def recent_jobs(connection: Connection, limit: int) -> list[Job]:
    rows = connection.execute(
        sa.text(f"SELECT {_JOB_COLUMNS} FROM roster_imports ORDER BY id DESC LIMIT :limit"), {"limit": limit}
    ).all()
    counts: dict[int, tuple[dict[str, int], dict[str, int]]] = {int(row.id): ({}, {}) for row in rows}
    if counts:
        query = sa.text(
            "SELECT import_id, verdict, outcome, COUNT(*) AS n FROM roster_import_rows "
            "WHERE import_id IN :ids GROUP BY import_id, verdict, outcome"
        ).bindparams(sa.bindparam("ids", expanding=True))
        for r in connection.execute(query, {"ids": sorted(counts)}):
            verdicts, outcomes = counts[int(r.import_id)]
            verdicts[str(r.verdict)] = verdicts.get(str(r.verdict), 0) + int(r.n)
            if r.outcome is not None:
                outcomes[str(r.outcome)] = outcomes.get(str(r.outcome), 0) + int(r.n)
    return [_job(row, *counts[int(row.id)]) for row in rows]


def job_rows(connection: Connection, job_id: int) -> list[JobRow]:
    rows = connection.execute(
        sa.text(
            "SELECT line, student_number, name, course_codes, student_id, verdict, reason, changes, "
            "photo_name, photo_state, face_px, outcome, outcome_reason FROM roster_import_rows "
            "WHERE import_id = :job ORDER BY line"
        ),
        {"job": job_id},
    )
    return [
        JobRow(
            line=int(r.line),
            student_number=str(r.student_number),
            name=str(r.name),
            course_codes=[c for c in str(r.course_codes).split() if c],
            student_id=int(r.student_id) if r.student_id is not None else None,
            verdict=str(r.verdict),
            reason=str(r.reason),
            changes=[c for c in str(r.changes).split("; ") if c],
            photo_name=r.photo_name,
            photo_state=r.photo_state,
            face_px=int(r.face_px) if r.face_px is not None else None,
            outcome=r.outcome,
            outcome_reason=str(r.outcome_reason),
        )
        for r in rows
    ]
