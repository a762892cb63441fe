"""The recorder's MySQL side: a batch of identity events becomes attendance in one transaction.

Idempotence comes from the database, not from memory: an event whose `event_id` is already
in `identity_events` (a redelivery) is skipped, and `attendance` has one row per student and
session, so replaying any batch changes nothing.

A sighting marks only a student who exists and is not deleted: any other is recorded as an
event (the log of what the recognizers said) and otherwise ignored.
"""

import logging
from collections import defaultdict
from collections.abc import Callable
from dataclasses import dataclass, field
from datetime import UTC, date, datetime, timedelta
from zoneinfo import ZoneInfo

import sqlalchemy as sa
from sqlalchemy.engine import Connection, Engine

from services.common import timetable
from services.common.attendance import (
    AttendanceChange,
    AttendanceMark,
    as_utc,
    fetch_changes,
    fetch_marks,
    to_db,
)
from services.common.corrections import RECOGNITION, SYSTEM, Current, set_status
from services.common.messages import (
    CameraHeartbeat,
    FaceRecognized,
    FaceUnknown,
    IdentityEvent,
    face_fields,
)
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
    # Absences the system had decided that this batch's sightings turned into present or late.
    changes: list[AttendanceChange] = field(default_factory=list)


@dataclass(frozen=True)
class _Facts:
    """What the sightings so far say, once they agree enough to mark someone."""

    event_id: str  # the sighting that made the mark
    first_seen: datetime
    last_seen: datetime
    best: float
    distance: float
    count: int
    evidence: dict[str, object]


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
            mark_ids, change_ids = self._update_attendance(connection, fresh, sessions)
            review.keep(connection, fresh, sessions)  # face crops for a person to decide
            marks = fetch_marks(connection, "a.id IN :ids", {"ids": mark_ids}) if mark_ids else []
            changes = fetch_changes(connection, "ch.id IN :ids", {"ids": change_ids}) if change_ids else []
        # Remembered only once committed: a batch rolled back (a deadlock, a lost connection)
        # must not leave a camera or a session that MySQL does not have looking known.
        self._known_cameras |= cameras
        self._default_sessions.update(created_defaults)
        return RecordedBatch(len(fresh), marks, changes)

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
        else is unknown for that session, kept with that student as its candidate for review;
        a face the recognizer left unknown but whose looks name a roster student by the roster
        rule (`FaceUnknown.roster_evidence`) is that student, on "check". (At school scale a
        stranger is likelier to resemble one of hundreds enrolled than one of a class; README,
        "Choosing the tolerance".)"""
        courses = {s.course_id for s in sessions.values() if s.course_id is not None}
        if not courses:
            return events
        rows = connection.execute(
            sa.text(
                "SELECT cs.course_id, s.id, s.student_number, s.name FROM course_students cs "
                "JOIN students s ON s.id = cs.student_id "
                "WHERE cs.course_id IN :ids AND s.deleted_at IS NULL"
            ).bindparams(sa.bindparam("ids", expanding=True)),
            {"ids": sorted(courses)},
        )
        rosters: dict[int, dict[int, tuple[str, str]]] = defaultdict(dict)
        for course_id, student_id, number, name in rows:
            rosters[int(course_id)][int(student_id)] = (str(number), str(name))
        kept: list[IdentityEvent] = []
        for event in events:
            course = sessions[event.event_id].course_id
            roster = rosters.get(course) if course is not None else None
            if roster is None:
                kept.append(event)
            elif isinstance(event, FaceRecognized) and event.student_id not in roster:
                kept.append(_outside_roster(event))
            elif isinstance(event, FaceUnknown) and event.roster_evidence and event.candidate_id in roster:
                number, name = roster[event.candidate_id]
                kept.append(_on_roster(event, number, name))
            else:
                kept.append(event)
        return kept

    def _update_attendance(
        self, connection: Connection, events: list[IdentityEvent], sessions: dict[object, ClassSession]
    ) -> tuple[list[int], list[int]]:
        """The marks made (attendance ids) and the absences undone (change ids) by these events."""
        groups: dict[tuple[int, int], list[FaceRecognized]] = defaultdict(list)
        for event in events:
            if isinstance(event, FaceRecognized):
                groups[(sessions[event.event_id].id, event.student_id)].append(event)
        if not groups:
            return [], []
        active = self._active_students(connection, {student for _, student in groups})
        groups = {pair: sightings for pair, sightings in groups.items() if pair[1] in active}
        if not groups:
            return [], []
        existing = self._lock_existing(connection, list(groups))
        updates = []
        created = []
        changed = []
        for pair, sightings in groups.items():
            sightings.sort(key=lambda e: e.captured_at)
            session = sessions[sightings[0].event_id]
            current = existing.get(pair)
            if current is not None and not (current.status == "absent" and current.set_by == "system"):
                # Someone marked already (recognition, or a person: who is never overridden):
                # only its sightings change.
                updates.append((current.attendance_id, sightings))
                continue
            facts = self._vote(connection, session, pair[1], sightings)
            if facts is None:
                if current is not None:
                    updates.append((current.attendance_id, sightings))
                continue
            if current is None:
                created.append(self._insert_mark(connection, session, pair[1], facts))
            else:
                changed.append(self._undo_absence(connection, session, pair[1], current, facts))
        if updates:
            self._refresh(connection, updates)
        return created, changed

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
    ) -> dict[tuple[int, int], Current]:
        """The (session, student) pairs that already have a row, as they stand, locked until commit."""
        params: dict[str, int] = {}
        terms = []
        for n, (session_id, student_id) in enumerate(pairs):
            params[f"s{n}"], params[f"t{n}"] = session_id, student_id
            terms.append(f"(:s{n}, :t{n})")
        rows = connection.execute(
            sa.text(
                "SELECT a.id, a.session_id, a.student_id, a.mark_event_id, a.status, COALESCE(("
                "SELECT c.source FROM attendance_changes c WHERE c.attendance_id = a.id "
                "ORDER BY c.id DESC LIMIT 1), a.source) AS set_by FROM attendance a "
                f"WHERE (a.session_id, a.student_id) IN ({', '.join(terms)}) FOR UPDATE"
            ),
            params,
        )
        return {
            (int(r.session_id), int(r.student_id)): Current(int(r.id), r.mark_event_id, r.status, r.set_by)
            for r in rows
        }

    def _refresh(self, connection: Connection, updates: list[tuple[int, list[FaceRecognized]]]) -> None:
        """Later sightings of marked students, as one UPDATE joined to the batch's figures."""
        params: dict[str, object] = {}
        rows = []
        for n, (attendance_id, sightings) in enumerate(updates):
            params |= {
                f"i{n}": attendance_id,
                f"f{n}": to_db(sightings[0].captured_at),
                f"l{n}": to_db(sightings[-1].captured_at),
                f"b{n}": min(e.distance for e in sightings),
                f"c{n}": len(sightings),
            }
            rows.append(
                f"SELECT :i{n} AS id, CAST(:f{n} AS DATETIME(6)) AS first_seen, "
                f"CAST(:l{n} AS DATETIME(6)) AS last_seen, :b{n} AS best, :c{n} AS n"
            )
        connection.execute(
            sa.text(
                f"UPDATE attendance a JOIN ({' UNION ALL '.join(rows)}) u ON u.id = a.id "
                # A person's mark has no sightings yet (NULLs): GREATEST/LEAST of a NULL is NULL.
                "SET a.first_seen_at = COALESCE(a.first_seen_at, u.first_seen), "
                "a.last_seen_at = GREATEST(COALESCE(a.last_seen_at, u.last_seen), u.last_seen), "
                "a.best_distance = LEAST(COALESCE(a.best_distance, u.best), u.best), "
                "a.sightings = a.sightings + u.n"
            ),
            params,
        )

    def _vote(
        self, connection: Connection, session: ClassSession, student_id: int, fresh: list[FaceRecognized]
    ) -> _Facts | None:
        """What the sightings so far say if they agree enough to mark the student; else None."""
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
        return _Facts(
            event_id=event_id,
            first_seen=sightings[first][0],
            last_seen=max(s[0] for s in sightings),
            best=min(s[2] for s in sightings),
            distance=distance,
            count=len(sightings),
            evidence=_evidence_row(next((e for e in fresh if str(e.event_id) == event_id), None)),
        )

    def _status(self, connection: Connection, session: ClassSession, first_seen: datetime) -> str:
        """Present or late: late after the course's own grace (courses.late_after_min), else the
        school's (RECORDER_LATE_AFTER_MIN). Read per mark: a mark is made once per student and
        session, and an admin's change of the grace counts from the next mark."""
        grace = self.policy.late_after_min
        if session.course_id is not None:
            own = connection.execute(
                sa.text("SELECT late_after_min FROM courses WHERE id = :id"), {"id": session.course_id}
            ).scalar()
            if own is not None:
                grace = float(own)
        return rules.status_for(session, first_seen, grace)

    def _sighting_values(self, facts: _Facts) -> dict[str, object]:
        return {
            **facts.evidence,
            "first_seen": to_db(facts.first_seen),
            "last_seen": to_db(facts.last_seen),
            "best": facts.best,
            "distance": facts.distance,
            "n": facts.count,
        }

    def _insert_mark(
        self, connection: Connection, session: ClassSession, student_id: int, facts: _Facts
    ) -> int:
        """The attendance row recognition makes; its id."""
        result = connection.execute(
            sa.text(
                "INSERT INTO attendance (session_id, student_id, status, first_seen_at, last_seen_at, "
                "best_distance, mark_distance, sightings, mark_event_id, evidence_fresh, evidence_agreeing, "
                "mean_distance, mark_margin, confidence, mark_track_id, marked_at) "
                "VALUES (:session, :student, :status, :first_seen, :last_seen, :best, :distance, :n, "
                ":event_id, :fresh, :agreeing, :mean, :margin, :confidence, :track, CURRENT_TIMESTAMP(6))"
            ),
            {
                **self._sighting_values(facts),
                "session": session.id,
                "student": student_id,
                "status": self._status(connection, session, facts.first_seen),
                "event_id": facts.event_id,
            },
        )
        logger.info("marked student %d in session %d (%s)", student_id, session.id, session.name)
        return int(result.lastrowid)

    def _undo_absence(
        self, connection: Connection, session: ClassSession, student_id: int, current: Current, facts: _Facts
    ) -> int:
        """A sighting that arrived after the system decided the student absent (a backlog): the
        row becomes present or late, as recognition's change (docs/attendance-record.md). The
        row keeps its mark's event_id (its key in the CSV); its sightings are now these."""
        outcome = set_status(
            connection,
            session.id,
            student_id,
            self._status(connection, session, facts.first_seen),
            actor=RECOGNITION,
        )
        connection.execute(
            sa.text(
                "UPDATE attendance SET first_seen_at = :first_seen, last_seen_at = :last_seen, "
                "best_distance = :best, mark_distance = :distance, sightings = :n, evidence_fresh = :fresh, "
                "evidence_agreeing = :agreeing, mean_distance = :mean, mark_margin = :margin, "
                "confidence = :confidence, mark_track_id = :track WHERE id = :id"
            ),
            {**self._sighting_values(facts), "id": current.attendance_id},
        )
        logger.info(
            "student %d seen in session %d (%s) after being decided absent: now %s",
            student_id,
            session.id,
            session.name,
            outcome.to_status,
        )
        assert outcome.change_id is not None  # absent -> present/late is always a change
        return outcome.change_id

    def make_timetable_sessions(self, now: datetime, days_ahead: int) -> int:
        """The weekly slots' sessions from today to `days_ahead` days on (idempotent: the API
        makes them too when the timetable changes). How many were created."""
        first, last = timetable.days_ahead(now, self.tz, days_ahead)
        with self.engine.begin() as connection:
            made = timetable.make_sessions(connection, first, last, self.tz)
        if made:
            logger.info("timetable: %d session(s) made up to %s", made, last)
        return made

    def decide_absences(self, now: datetime, settle: timedelta) -> int:
        """For every session with a course that ended `settle` ago or more and is not finalized:
        each roster student (not deleted) without a row is absent, then the session is finalized.
        One transaction per session, so a restart that missed the end still decides it. How
        many sessions were finalized."""
        with self.engine.connect() as connection:
            due = (
                connection.execute(
                    sa.text(
                        "SELECT id FROM class_sessions WHERE finalized_at IS NULL AND ends_at <= :cutoff "
                        "AND course_id IS NOT NULL ORDER BY ends_at, id LIMIT 100"
                    ),
                    {"cutoff": to_db(now - settle)},
                )
                .scalars()
                .all()
            )
        return sum(self._finalize(int(session_id)) for session_id in due)

    def _finalize(self, session_id: int) -> bool:
        with self.engine.begin() as connection:
            course_id = connection.execute(
                sa.text(
                    "SELECT course_id FROM class_sessions WHERE id = :id AND finalized_at IS NULL "
                    "AND course_id IS NOT NULL FOR UPDATE"
                ),
                {"id": session_id},
            ).scalar()
            if course_id is None:
                return False  # finalized meanwhile
            unseen = connection.execute(
                sa.text(
                    "SELECT r.student_id FROM course_students r "
                    "JOIN students s ON s.id = r.student_id AND s.deleted_at IS NULL "
                    "LEFT JOIN attendance a ON a.session_id = :session AND a.student_id = r.student_id "
                    "WHERE r.course_id = :course AND a.id IS NULL ORDER BY r.student_id"
                ),
                {"session": session_id, "course": course_id},
            ).scalars()
            absent = [
                set_status(connection, session_id, int(student_id), "absent", actor=SYSTEM)
                for student_id in unseen.all()
            ]
            connection.execute(
                sa.text("UPDATE class_sessions SET finalized_at = CURRENT_TIMESTAMP(6) WHERE id = :id"),
                {"id": session_id},
            )
        logger.info("session %d ended: %d roster student(s) not seen are absent", session_id, len(absent))
        return True

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

    def all_changes(self) -> list[AttendanceChange]:
        with self.engine.connect() as connection:
            return fetch_changes(connection)

    def unjournaled(
        self, journaled: Callable[[str], bool], after_mark: int, after_change: int
    ) -> tuple[list[AttendanceMark], list[AttendanceChange], int, int]:
        """The marks and changes with ids above these that the journal lacks, in id order, and
        the highest ids there are. Ids above are read first (key and event id only: cheap), the
        rows themselves only for those missing. If the highest id is below `after_*`, the
        database was reset: everything is looked at again (rows are keyed by event id)."""
        with self.engine.connect() as connection:
            top_mark = connection.execute(sa.text("SELECT COALESCE(MAX(id), 0) FROM attendance")).scalar_one()
            top_change = connection.execute(
                sa.text("SELECT COALESCE(MAX(id), 0) FROM attendance_changes")
            ).scalar_one()
            if top_mark < after_mark or top_change < after_change:
                logger.warning("attendance ids restarted (the database was reset?): reconciling the CSV")
                after_mark = after_change = 0
            mark_ids = [
                int(r.id)
                for r in connection.execute(
                    sa.text("SELECT id, mark_event_id FROM attendance WHERE id > :after ORDER BY id"),
                    {"after": after_mark},
                )
                if not journaled(r.mark_event_id)
            ]
            change_ids = [
                int(r.id)
                for r in connection.execute(
                    sa.text(
                        "SELECT id, change_event_id FROM attendance_changes WHERE id > :after ORDER BY id"
                    ),
                    {"after": after_change},
                )
                if not journaled(r.change_event_id)
            ]
            marks = fetch_marks(connection, "a.id IN :ids", {"ids": mark_ids}) if mark_ids else []
            changes = fetch_changes(connection, "ch.id IN :ids", {"ids": change_ids}) if change_ids else []
        return marks, changes, int(top_mark), int(top_change)


def _outside_roster(event: FaceRecognized) -> FaceUnknown:
    """A face named as a student outside the session's roster: unknown, with them as candidate."""
    return FaceUnknown(
        **face_fields(event),
        best_distance=event.distance,
        candidate_id=event.student_id,
    )


def _on_roster(event: FaceUnknown, number: str, name: str) -> FaceRecognized:
    """A face the roster rule names as a roster student: that student, on thin evidence."""
    evidence = event.roster_evidence
    assert event.candidate_id is not None and evidence is not None
    return FaceRecognized(
        **face_fields(event),
        student_id=event.candidate_id,
        student_number=number,
        student_name=name,
        distance=evidence.best_distance if event.best_distance is None else event.best_distance,
        margin=evidence.margin,
        evidence=evidence,
    )


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
