"""The recorder's MySQL side: a batch of identity events becomes attendance in one transaction.

Idempotence comes from the database, not from memory: an event whose `event_id` is already
in `identity_events` (a redelivery) is skipped, and `attendance` has one row per student and
session, so replaying any batch changes nothing.

A sighting marks only a student who exists and is not deleted: any other is recorded as an
event (the log of what the recognizers said) and otherwise ignored.
"""

import logging
from collections import defaultdict
from dataclasses import dataclass
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common.attendance import AttendanceMark, as_utc, fetch_marks, to_db
from services.common.messages import CameraHeartbeat, FaceRecognized, FaceUnknown, IdentityEvent
from services.common.sessions import (
    ClassSession,
    ensure_cameras,
    ensure_default_session,
    local_day,
    scheduled_session_at,
    scheduled_sessions,
)
from services.recorder import review, rules

logger = logging.getLogger(__name__)


@dataclass(frozen=True)
class MarkPolicy:
    min_sightings: int = 1
    window: timedelta = timedelta(seconds=10)
    late_after_min: float | None = None


@dataclass(frozen=True)
class RecordedBatch:
    fresh_events: int  # how many events were new (the rest were redeliveries)
    marks: list[AttendanceMark]  # attendance rows created by this batch, in id order


class AttendanceStore:
    def __init__(self, engine: Engine, tz: ZoneInfo, policy: MarkPolicy) -> None:
        self.engine = engine
        self.tz = tz
        self.policy = policy
        self._known_cameras: set[str] = set()
        self._default_sessions: dict[tuple[str, date], ClassSession] = {}
        self._ignored_students: set[int] = set()  # warned about once

    def record(self, events: list[IdentityEvent]) -> RecordedBatch:
        """Persist a batch in one transaction; returns what was new."""
        created_defaults: dict[tuple[str, date], ClassSession] = {}
        with self.engine.begin() as connection:
            fresh = self._fresh(connection, events)
            if not fresh:
                return RecordedBatch(0, [])
            cameras = {e.camera_id for e in fresh}
            ensure_cameras(connection, cameras - self._known_cameras)
            sessions = self._sessions_for(connection, fresh, created_defaults)
            fresh = self._within_rosters(connection, fresh, sessions)
            connection.execute(
                sa.text(
                    "INSERT INTO identity_events (event_id, kind, camera_id, frame_seq, captured_at, "
                    "recognized_at, student_id, distance, tracked, track_id, candidate_id, session_id) "
                    "VALUES (:event_id, :kind, :camera_id, :frame_seq, :captured_at, :recognized_at, "
                    ":student_id, :distance, :tracked, :track_id, :candidate_id, :session_id)"
                ),
                [_event_row(event, sessions[event.event_id].id) for event in fresh],
            )
            mark_ids = self._update_attendance(connection, fresh, sessions)
            review.keep(connection, fresh, sessions)  # face crops for a person to decide
            marks = fetch_marks(connection, "a.id IN :ids", {"ids": mark_ids}) if mark_ids else []
        # Remembered only once committed: a batch rolled back (a deadlock, a lost connection)
        # must not leave a camera or a session that MySQL does not have looking known.
        self._known_cameras |= cameras
        self._default_sessions.update(created_defaults)
        return RecordedBatch(len(fresh), marks)

    def _fresh(self, connection: Connection, events: list[IdentityEvent]) -> list[IdentityEvent]:
        ids = [str(e.event_id) for e in events]
        seen = set(
            connection.execute(
                sa.text("SELECT event_id FROM identity_events WHERE event_id IN :ids").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": ids},
            ).scalars()
        )
        fresh = []
        for event in events:
            if str(event.event_id) not in seen:
                seen.add(str(event.event_id))  # a duplicate inside the batch counts once, too
                fresh.append(event)
        return fresh

    def _sessions_for(
        self,
        connection: Connection,
        events: list[IdentityEvent],
        created_defaults: dict[tuple[str, date], ClassSession],
    ) -> dict[object, ClassSession]:
        by_camera: dict[str, list[IdentityEvent]] = defaultdict(list)
        for event in events:
            by_camera[event.camera_id].append(event)
        chosen: dict[object, ClassSession] = {}
        for camera_id, camera_events in by_camera.items():
            times = [e.captured_at for e in camera_events]
            scheduled = scheduled_sessions(connection, camera_id, min(times), max(times))
            for event in camera_events:
                session = scheduled_session_at(scheduled, event.captured_at)
                if session is None:
                    day = local_day(event.captured_at, self.tz)
                    session = self._default_sessions.get((camera_id, day)) or created_defaults.get(
                        (camera_id, day)
                    )
                    if session is None:
                        session = ensure_default_session(connection, camera_id, day, self.tz)
                        created_defaults[(camera_id, day)] = session
                chosen[event.event_id] = session
        return chosen

    def _within_rosters(
        self, connection: Connection, events: list[IdentityEvent], sessions: dict[object, ClassSession]
    ) -> list[IdentityEvent]:
        """A session with a roster names only its roster's students: a face named as anyone
        else is unknown for that session, kept with that student as its candidate for review.
        (At school scale a stranger is likelier to resemble one of hundreds enrolled than one
        of a class; README, "Choosing the tolerance".)"""
        courses = {s.course_id for s in sessions.values() if s.course_id is not None}
        if not courses:
            return events
        rows = connection.execute(
            sa.text("SELECT course_id, student_id FROM course_students WHERE course_id IN :ids").bindparams(
                sa.bindparam("ids", expanding=True)
            ),
            {"ids": sorted(courses)},
        )
        rosters: dict[int, set[int]] = defaultdict(set)
        for course_id, student_id in rows:
            rosters[int(course_id)].add(int(student_id))
        kept: list[IdentityEvent] = []
        for event in events:
            course = sessions[event.event_id].course_id
            if (
                isinstance(event, FaceRecognized)
                and course in rosters
                and event.student_id not in rosters[course]
            ):
                kept.append(
                    FaceUnknown(
                        event_id=event.event_id,
                        camera_id=event.camera_id,
                        frame_seq=event.frame_seq,
                        captured_at=event.captured_at,
                        recognized_at=event.recognized_at,
                        box=event.box,
                        worker=event.worker,
                        best_distance=event.distance,
                        track_id=event.track_id,
                        candidate_id=event.student_id,
                        crop=event.crop,
                    )
                )
            else:
                kept.append(event)
        return kept

    def _update_attendance(
        self, connection: Connection, events: list[IdentityEvent], sessions: dict[object, ClassSession]
    ) -> list[int]:
        groups: dict[tuple[int, int], list[FaceRecognized]] = defaultdict(list)
        for event in events:
            if isinstance(event, FaceRecognized):
                groups[(sessions[event.event_id].id, event.student_id)].append(event)
        if not groups:
            return []
        active = self._active_students(connection, {student for _, student in groups})
        groups = {pair: sightings for pair, sightings in groups.items() if pair[1] in active}
        if not groups:
            return []
        existing = self._lock_existing(connection, list(groups))
        updates = []
        created = []
        for pair, sightings in groups.items():
            sightings.sort(key=lambda e: e.captured_at)
            if pair in existing:
                updates.append((existing[pair], sightings))
                continue
            mark = self._new_mark(connection, sessions[sightings[0].event_id], pair[1], sightings)
            if mark is not None:
                created.append(mark)
        if updates:
            self._refresh(connection, updates)
        return created

    def _active_students(self, connection: Connection, student_ids: set[int]) -> set[int]:
        """The students of these ids that exist and are not deleted. A sighting of any other
        (deleted since the recognizer loaded its gallery, or a forged id) is kept as an event
        but marks no one."""
        active = set(
            connection.execute(
                sa.text("SELECT id FROM students WHERE id IN :ids AND deleted_at IS NULL").bindparams(
                    sa.bindparam("ids", expanding=True)
                ),
                {"ids": sorted(student_ids)},
            ).scalars()
        )
        for student_id in sorted(student_ids - active - self._ignored_students):
            self._ignored_students.add(student_id)
            logger.warning(
                "ignoring sightings of student %d: no such student, or deleted (no attendance is "
                "recorded for them; said once per student)",
                student_id,
            )
        return active

    def _lock_existing(
        self, connection: Connection, pairs: list[tuple[int, int]]
    ) -> dict[tuple[int, int], int]:
        """Attendance ids of the (session, student) pairs that already have a row, locked until commit."""
        params: dict[str, int] = {}
        terms = []
        for n, (session_id, student_id) in enumerate(pairs):
            params[f"s{n}"], params[f"t{n}"] = session_id, student_id
            terms.append(f"(:s{n}, :t{n})")
        rows = connection.execute(
            sa.text(
                "SELECT id, session_id, student_id FROM attendance "
                f"WHERE (session_id, student_id) IN ({', '.join(terms)}) FOR UPDATE"
            ),
            params,
        )
        return {(int(r.session_id), int(r.student_id)): int(r.id) for r in rows}

    def _refresh(self, connection: Connection, updates: list[tuple[int, list[FaceRecognized]]]) -> None:
        """Later sightings of marked students, as one UPDATE joined to the batch's figures."""
        params: dict[str, object] = {}
        rows = []
        for n, (attendance_id, sightings) in enumerate(updates):
            params |= {
                f"i{n}": attendance_id,
                f"l{n}": to_db(sightings[-1].captured_at),
                f"b{n}": min(e.distance for e in sightings),
                f"c{n}": len(sightings),
            }
            rows.append(
                f"SELECT :i{n} AS id, CAST(:l{n} AS DATETIME(6)) AS last_seen, :b{n} AS best, :c{n} AS n"
            )
        connection.execute(
            sa.text(
                f"UPDATE attendance a JOIN ({' UNION ALL '.join(rows)}) u ON u.id = a.id "
                "SET a.last_seen_at = GREATEST(a.last_seen_at, u.last_seen), "
                "a.best_distance = LEAST(a.best_distance, u.best), a.sightings = a.sightings + u.n"
            ),
            params,
        )

    def _new_mark(
        self, connection: Connection, session: ClassSession, student_id: int, fresh: list[FaceRecognized]
    ) -> int | None:
        """Insert the attendance row if the sightings so far agree enough; its id, or None."""
        if self.policy.min_sightings <= 1:  # the recognizer's track decision is the vote
            sightings = [(e.captured_at, str(e.event_id), e.distance) for e in fresh]
            first, last = 0, 0
        else:
            rows = connection.execute(
                sa.text(
                    "SELECT captured_at, event_id, distance FROM identity_events WHERE session_id = :session "
                    # Tracked sightings repeat an earlier encoding: only encoded ones are votes.
                    "AND student_id = :student AND kind = 'recognized' AND NOT tracked "
                    "AND captured_at >= :since ORDER BY captured_at, id"
                ),
                {
                    "session": session.id,
                    "student": student_id,
                    "since": to_db(fresh[0].captured_at - self.policy.window),
                },
            )
            sightings = [(as_utc(r.captured_at), r.event_id, float(r.distance)) for r in rows]
            span = rules.mark_span([s[0] for s in sightings], self.policy.min_sightings, self.policy.window)
            if span is None:
                return None
            first, last = span
        _, event_id, distance = sightings[last]
        first_seen = sightings[first][0]
        result = connection.execute(
            sa.text(
                "INSERT INTO attendance (session_id, student_id, status, first_seen_at, last_seen_at, "
                "best_distance, mark_distance, sightings, mark_event_id, evidence_fresh, evidence_agreeing, "
                "mean_distance, mark_margin, confidence, mark_track_id, marked_at) "
                "VALUES (:session, :student, :status, :first_seen, :last_seen, :best, :distance, :n, "
                ":event_id, :fresh, :agreeing, :mean, :margin, :confidence, :track, CURRENT_TIMESTAMP(6))"
            ),
            {
                **_evidence_row(next((e for e in fresh if str(e.event_id) == event_id), None)),
                "session": session.id,
                "student": student_id,
                "status": rules.status_for(session, first_seen, self.policy.late_after_min),
                "first_seen": to_db(first_seen),
                "last_seen": to_db(max(s[0] for s in sightings)),
                "best": min(s[2] for s in sightings),
                "distance": distance,
                "n": len(sightings),
                "event_id": event_id,
            },
        )
        logger.info("marked student %d in session %d (%s)", student_id, session.id, session.name)
        return int(result.lastrowid)

    def record_heartbeat(self, heartbeat: CameraHeartbeat) -> None:
        """The camera's row, and its default session of today, so the dashboard can open it
        before anyone is seen."""
        day = local_day(heartbeat.last_frame_at or datetime.now(UTC), self.tz)
        with self.engine.begin() as connection:
            connection.execute(
                sa.text(
                    # No VALUES(): deprecated in MySQL 8, and its alias syntax is not MariaDB's.
                    "INSERT INTO cameras (id, name, source, last_frame_at) "
                    "VALUES (:id, :name, :source, :last) "
                    "ON DUPLICATE KEY UPDATE name = :name, source = :source, "
                    "last_frame_at = GREATEST(COALESCE(last_frame_at, :last), COALESCE(:last, last_frame_at))"
                ),
                {
                    "id": heartbeat.camera_id,
                    "name": heartbeat.camera_name,
                    "source": heartbeat.source,
                    "last": to_db(heartbeat.last_frame_at) if heartbeat.last_frame_at else None,
                },
            )
            default = self._default_sessions.get((heartbeat.camera_id, day))
            if default is None:
                default = ensure_default_session(connection, heartbeat.camera_id, day, self.tz)
        self._known_cameras.add(heartbeat.camera_id)
        self._default_sessions[(heartbeat.camera_id, day)] = default

    def all_marks(self) -> list[AttendanceMark]:
        with self.engine.connect() as connection:
            return fetch_marks(connection)

    def marks_after(self, attendance_id: int) -> list[AttendanceMark]:
        """Marks committed after this one (the recorder is the only writer, single.py: ids grow
        with time, until the database is reset)."""
        with self.engine.connect() as connection:
            return fetch_marks(connection, "a.id > :last", {"last": attendance_id})


def _evidence_row(event: FaceRecognized | None) -> dict[str, object]:
    """What the recognizer's track decision said when the mark was made (NULLs if unknown)."""
    evidence = event.evidence if event is not None else None
    return {
        "fresh": evidence.fresh if evidence else None,
        "agreeing": evidence.agreeing if evidence else None,
        "mean": evidence.mean_distance if evidence else None,
        "margin": evidence.margin if evidence else None,
        "confidence": evidence.tier if evidence else None,
        "track": str(event.track_id) if event is not None and event.track_id else None,
    }


def _event_row(event: IdentityEvent, session_id: int) -> dict[str, object]:
    return {
        "event_id": str(event.event_id),
        "kind": "recognized" if isinstance(event, FaceRecognized) else "unknown",
        "camera_id": event.camera_id,
        "frame_seq": event.frame_seq,
        "captured_at": to_db(event.captured_at),
        "recognized_at": to_db(event.recognized_at),
        "student_id": event.student_id if isinstance(event, FaceRecognized) else None,
        "distance": event.distance if isinstance(event, FaceRecognized) else event.best_distance,
        "tracked": isinstance(event, FaceRecognized) and event.tracked,
        "track_id": str(event.track_id) if event.track_id else None,
        "candidate_id": event.candidate_id if isinstance(event, FaceUnknown) else None,
        "session_id": session_id,
    }
