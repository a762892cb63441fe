"""The review queue in MySQL (docs/attendance-record.md, "Review queue"): items (one per track
the recorder kept) with their crops' metadata, counts by state, one crop's JPEG, and an item's
resolution. The recorder writes items and crops (services/recorder/review.py); the API only
reads them and resolves items."""

from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import as_utc

STATES = ("open", "assigned", "dismissed", "undone")


@dataclass(frozen=True)
class Candidate:
    id: int
    student_number: str
    name: str


@dataclass(frozen=True)
class CropInfo:
    id: int
    captured_at: datetime
    distance: float | None


@dataclass(frozen=True)
class ReviewItem:
    id: int
    track_id: str
    kind: str
    camera_id: str
    session_id: int | None
    candidate: Candidate | None
    best_distance: float | None
    first_seen_at: datetime
    last_seen_at: datetime
    state: str
    resolved_at: datetime | None
    resolved_by: str | None
    resolved_student_id: int | None
    attendance_id: int | None
    crops: list[CropInfo]


ITEM_QUERY = """
SELECT i.id, i.track_id, i.kind, i.camera_id, i.session_id, i.candidate_id, i.best_distance,
       i.first_seen_at, i.last_seen_at, i.state, i.resolved_at, i.resolved_by,
       i.resolved_student_id, i.attendance_id, s.student_number, s.name AS candidate_name
FROM review_items i LEFT JOIN students s ON s.id = i.candidate_id
"""


def _items(connection: Connection, rows: list[sa.Row]) -> list[ReviewItem]:
    crops: dict[int, list[CropInfo]] = {int(r.id): [] for r in rows}
    if crops:
        found = connection.execute(
            sa.text(
                # Best first: the closest look (usually the most frontal), looks without a distance last.
                "SELECT id, item_id, captured_at, distance FROM review_crops WHERE item_id IN :ids "
                "ORDER BY item_id, distance IS NULL, distance, id"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": sorted(crops)},
        )
        for c in found:
            crops[int(c.item_id)].append(
                CropInfo(int(c.id), as_utc(c.captured_at), None if c.distance is None else float(c.distance))
            )
    return [
        ReviewItem(
            id=int(r.id),
            track_id=r.track_id,
            kind=r.kind,
            camera_id=r.camera_id,
            session_id=None if r.session_id is None else int(r.session_id),
            candidate=Candidate(int(r.candidate_id), r.student_number, r.candidate_name)
            if r.candidate_id is not None and r.student_number is not None
            else None,
            best_distance=None if r.best_distance is None else float(r.best_distance),
            first_seen_at=as_utc(r.first_seen_at),
            last_seen_at=as_utc(r.last_seen_at),
            state=r.state,
            resolved_at=as_utc(r.resolved_at) if r.resolved_at is not None else None,
            resolved_by=r.resolved_by,
            resolved_student_id=None if r.resolved_student_id is None else int(r.resolved_student_id),
            attendance_id=None if r.attendance_id is None else int(r.attendance_id),
            crops=crops[int(r.id)],
        )
        for r in rows
    ]


def counts(connection: Connection, session_id: int) -> dict[str, int]:
    """How many items of the session are in each state (every state, 0 included)."""
    rows = connection.execute(
        sa.text("SELECT state, COUNT(*) AS n FROM review_items WHERE session_id = :session GROUP BY state"),
        {"session": session_id},
    )
    found = {r.state: int(r.n) for r in rows}
    return {state: found.get(state, 0) for state in STATES}


def session_items(
    connection: Connection, session_id: int, state: str | None, page: int, page_size: int
) -> tuple[list[ReviewItem], int]:
    """A page of the session's items (one state, or all), the most recently seen first; and how
    many match."""
    where = "i.session_id = :session" + (" AND i.state = :state" if state else "")
    params: dict[str, object] = {"session": session_id, "state": state}
    total = connection.execute(
        sa.text(f"SELECT COUNT(*) FROM review_items i WHERE {where}"), params
    ).scalar_one()
    rows = list(
        connection.execute(
            sa.text(
                f"{ITEM_QUERY} WHERE {where} ORDER BY i.last_seen_at DESC, i.id DESC "
                "LIMIT :limit OFFSET :offset"
            ),
            {**params, "limit": page_size, "offset": (page - 1) * page_size},
        )
    )
    return _items(connection, rows), int(total)


def get_item(connection: Connection, item_id: int, *, lock: bool = False) -> ReviewItem | None:
    """One item; with `lock`, its row is locked until commit (two people deciding it at once:
    the second waits, then finds it resolved)."""
    if lock:
        connection.execute(sa.text("SELECT id FROM review_items WHERE id = :id FOR UPDATE"), {"id": item_id})
    rows = list(connection.execute(sa.text(f"{ITEM_QUERY} WHERE i.id = :id"), {"id": item_id}))
    return _items(connection, rows)[0] if rows else None


def crop_of(connection: Connection, crop_id: int) -> tuple[int | None, bytes] | None:
    """A crop's item's session and its JPEG, or None."""
    row = connection.execute(
        sa.text(
            "SELECT i.session_id, c.crop FROM review_crops c JOIN review_items i ON i.id = c.item_id "
            "WHERE c.id = :id"
        ),
        {"id": crop_id},
    ).first()
    if row is None:
        return None
    return (None if row.session_id is None else int(row.session_id)), bytes(row.crop)


def crop_jpegs(connection: Connection, item_id: int) -> list[bytes]:
    """The item's crops, best first (as listed)."""
    rows = connection.execute(
        sa.text("SELECT crop FROM review_crops WHERE item_id = :id ORDER BY distance IS NULL, distance, id"),
        {"id": item_id},
    )
    return [bytes(r.crop) for r in rows]


def resolve(
    connection: Connection,
    item_id: int,
    state: str,
    *,
    by: str,
    student_id: int | None = None,
    attendance_id: int | None = None,
) -> None:
    connection.execute(
        sa.text(
            "UPDATE review_items SET state = :state, resolved_at = CURRENT_TIMESTAMP(6), resolved_by = :by, "
            "resolved_student_id = :student, attendance_id = COALESCE(:attendance, attendance_id) "
            "WHERE id = :id"
        ),
        {"state": state, "by": by[:300], "student": student_id, "attendance": attendance_id, "id": item_id},
    )
