"""The review queue's recorder side (docs/attendance-record.md, "Review queue"): the face crops
the recognizer attaches to the looks a person should see become `review_items` (one per
track) and `review_crops`, in the transaction that records the events.

- An event with a crop upserts its track's item: first and last seen widen, the best distance
  and its candidate follow the closest look, and a track once named on thin evidence
  (`check`, a FaceRecognized) stays `check`, with the mark it made (`attendance_id`). Its crop is
  stored while the item is open and has fewer than MAX_CROPS (the recognizer sends at most a
  few; this bounds a forged flood).
- A track named confidently afterwards (a FaceRecognized without a crop, tier `confident`)
  needs nobody: its open `unknown` item and crops are deleted.

The crops are biometric data: purged after RECORDER_REVIEW_RETENTION_DAYS (retention.py),
erased with the student they were assigned to (services.common.students.erase_student).
"""

import uuid
from collections.abc import Mapping
from dataclasses import dataclass
from datetime import datetime

import sqlalchemy as sa
from sqlalchemy.engine import Connection

from services.common.attendance import to_db
from services.common.messages import FaceRecognized, IdentityEvent
from services.common.sessions import ClassSession

MAX_CROPS = 5  # kept per item


@dataclass
class _Track:
    kind: str
    camera_id: str
    session_id: int
    candidate_id: int | None
    best_distance: float | None
    first_seen: datetime
    last_seen: datetime
    student_id: int | None  # named (check): the student it was named as
    crops: list[IdentityEvent]


def _distance(event: IdentityEvent) -> float | None:
    return event.distance if isinstance(event, FaceRecognized) else event.best_distance


def _candidate(event: IdentityEvent) -> int | None:
    return event.student_id if isinstance(event, FaceRecognized) else event.candidate_id


def keep(connection: Connection, events: list[IdentityEvent], sessions: Mapping[object, ClassSession]) -> int:
    """Record the batch's review crops (after its attendance, in its transaction); the number of
    crops stored."""
    tracks: dict[uuid.UUID, _Track] = {}
    confident: set[str] = set()
    for event in events:
        if event.track_id is None:
            continue
        if event.crop is None:
            if isinstance(event, FaceRecognized) and event.evidence and event.evidence.tier == "confident":
                confident.add(str(event.track_id))
            continue
        named = isinstance(event, FaceRecognized)
        track = tracks.get(event.track_id)
        if track is None:
            track = tracks[event.track_id] = _Track(
                kind="check" if named else "unknown",
                camera_id=event.camera_id,
                session_id=sessions[event.event_id].id,
                candidate_id=_candidate(event),
                best_distance=_distance(event),
                first_seen=event.captured_at,
                last_seen=event.captured_at,
                student_id=None,
                crops=[],
            )
        track.first_seen = min(track.first_seen, event.captured_at)
        track.last_seen = max(track.last_seen, event.captured_at)
        distance = _distance(event)
        if distance is not None and (track.best_distance is None or distance < track.best_distance):
            track.best_distance, track.candidate_id = distance, _candidate(event)
        if isinstance(event, FaceRecognized):
            track.kind, track.student_id = "check", event.student_id
        track.crops.append(event)
    confident -= {str(t) for t in tracks}
    if confident:
        connection.execute(
            sa.text(
                "DELETE FROM review_items WHERE track_id IN :tracks AND state = 'open' AND kind = 'unknown'"
            ).bindparams(sa.bindparam("tracks", expanding=True)),
            {"tracks": sorted(confident)},
        )
    if not tracks:
        return 0
    for track_id, track in tracks.items():
        _upsert(connection, str(track_id), track)
    return _store_crops(connection, tracks)


def _upsert(connection: Connection, track_id: str, track: _Track) -> None:
    attendance_id = None
    if track.student_id is not None:
        # The mark this track made (the recorder marks at a named track's first event).
        attendance_id = connection.execute(
            sa.text(
                "SELECT id FROM attendance WHERE session_id = :session AND student_id = :student "
                "AND mark_track_id = :track"
            ),
            {"session": track.session_id, "student": track.student_id, "track": track_id},
        ).scalar()
    # No VALUES() (deprecated in MySQL 8, MariaDB spells its alias differently): named parameters.
    connection.execute(
        sa.text(
            "INSERT INTO review_items (track_id, kind, camera_id, session_id, candidate_id, best_distance, "
            "first_seen_at, last_seen_at, attendance_id) VALUES (:track, :kind, :camera, :session, "
            ":candidate, :best, :first, :last, :attendance) ON DUPLICATE KEY UPDATE "
            "kind = IF(:kind = 'check', 'check', kind), "
            "attendance_id = COALESCE(attendance_id, :attendance), "
            "candidate_id = IF(:best IS NOT NULL AND (best_distance IS NULL OR :best < best_distance), "
            ":candidate, candidate_id), "
            "best_distance = IF(:best IS NOT NULL AND (best_distance IS NULL OR :best < best_distance), "
            ":best, best_distance), "
            "first_seen_at = LEAST(first_seen_at, :first), last_seen_at = GREATEST(last_seen_at, :last)"
        ),
        {
            "track": track_id,
            "kind": track.kind,
            "camera": track.camera_id,
            "session": track.session_id,
            "candidate": track.candidate_id,
            "best": track.best_distance,
            "first": to_db(track.first_seen),
            "last": to_db(track.last_seen),
            "attendance": attendance_id,
        },
    )


def _store_crops(connection: Connection, tracks: dict[uuid.UUID, _Track]) -> int:
    rows = connection.execute(
        sa.text(
            "SELECT i.id, i.track_id, i.state, "
            "(SELECT COUNT(*) FROM review_crops c WHERE c.item_id = i.id) AS n "
            "FROM review_items i WHERE i.track_id IN :tracks FOR UPDATE"
        ).bindparams(sa.bindparam("tracks", expanding=True)),
        {"tracks": sorted(str(t) for t in tracks)},
    ).all()
    values = []
    for row in rows:
        if row.state != "open":
            continue  # decided: no more crops of it
        room = MAX_CROPS - int(row.n)
        for event in tracks[uuid.UUID(row.track_id)].crops[: max(room, 0)]:
            values.append(
                {
                    "item": int(row.id),
                    "at": to_db(event.captured_at),
                    "distance": _distance(event),
                    "crop": event.crop,
                }
            )
    if values:
        connection.execute(
            sa.text(
                "INSERT INTO review_crops (item_id, captured_at, distance, crop) "
                "VALUES (:item, :at, :distance, :crop)"
            ),
            values,
        )
    return len(values)
