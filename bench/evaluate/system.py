"""One lesson through the real system: a fresh database and vhost, the enrolled students (and
optionally the class's course and a session covering the lesson), the recorder, N recognizer
processes and capture playing the file; then everything it recorded, read back.

Only the running system and its database are looked at, never the recognizers' internals:
what the workers publish is copied by a tap on the recognizer exchange (for each face's box
and worker, which MySQL does not keep), and attendance and identity events are read from MySQL.
"""

import contextlib
import csv
import json
import os
import shutil
import subprocess
import sys
import threading
import time
from dataclasses import dataclass, field
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pika
import sqlalchemy as sa

from harness.processes import ServiceProcess, wait_until
from harness.servers import fresh_database, fresh_vhost, remove_database, remove_vhost
from services.api.queries.courses import create_course, replace_roster
from services.api.queries.sessions import create_session
from services.capture.settings import CaptureSettings
from services.common import topology
from services.common.amqp.connection import connection_parameters
from services.common.attendance import as_utc, fetch_marks
from services.common.db import create_engine
from services.common.settings import BrokerSettings, DatabaseSettings
from services.common.students import Consent, add_face_encoding, create_student
from services.faces.enrollment import (
    DEFAULT_MIN_FACE_PX,
    EnrollmentPhoto,
    PhotoRejectedError,
    analyze_photo,
    enrollment_analyzer,
)

CAMERA_ID = "lesson"
PHOTO_SUFFIXES = {".jpg", ".jpeg", ".png", ".bmp", ".webp"}


@dataclass
class Enrollment:
    faces: dict[str, list[EnrollmentPhoto]]  # student number -> accepted photos
    refused: list[tuple[str, str, str]]  # (student number, photo, reason)


def analyze_enrollment(folder: Path, min_face_px: int, progress: bool = True) -> Enrollment:
    """Every photo of `folder/<student number>/`, through the project's own enrollment code."""
    analyzer = enrollment_analyzer()
    faces: dict[str, list[EnrollmentPhoto]] = {}
    refused = []
    students = sorted(p for p in folder.iterdir() if p.is_dir())
    started = time.monotonic()
    for n, student in enumerate(students, start=1):
        faces[student.name] = []
        for photo in sorted(p for p in student.iterdir() if p.suffix.lower() in PHOTO_SUFFIXES):
            try:
                faces[student.name].append(analyze_photo(photo.read_bytes(), analyzer, min_face_px))
            except PhotoRejectedError as error:
                refused.append((student.name, photo.name, str(error)))
        if progress and (n % 50 == 0 or n == len(students)):
            elapsed = time.monotonic() - started
            sys.stdout.write(f"  enrollment: {n}/{len(students)} students analyzed ({elapsed:.0f}s)\n")
            sys.stdout.flush()
    return Enrollment(faces, refused)


@dataclass
class RunSettings:
    video: Path
    recognizers: int
    pace: str  # realtime | fast
    speed: float
    capture_fps: float
    names: dict[str, str]
    roster: set[str] | None
    duration_s: float
    kill_recognizer_at_s: float | None = None  # media seconds
    video_fps: float = 5.0
    extra_env: dict[str, str] = field(default_factory=dict)
    keep_database: bool = False
    tag: str = "evaluate"


@dataclass
class RunResult:
    settings: RunSettings
    database_url: str | None
    session_id: int | None
    wall_s: float
    marks: list[dict[str, Any]]
    events: list[dict[str, Any]]  # identity_events rows, with student_number and the tap's box/worker
    analyzed: list[dict[str, Any]]  # the tap's frame.analyzed bodies
    frames_published: int | None
    killed: dict[str, Any] | None
    csv_rows: list[dict[str, str]]
    tap_only: int  # identity events the tap saw that MySQL does not have
    logs: dict[str, str]
    media_start: datetime | None = None  # when capture stamps a file's frames with their own time
    review: list[dict[str, Any]] = field(default_factory=list)  # the session's review items


class Tap:
    """A private queue with a copy of everything the recognizers publish."""

    def __init__(self, amqp_url: str) -> None:
        self.messages: list[tuple[float, str, dict[str, Any]]] = []
        self._stop = threading.Event()
        self._ready = threading.Event()
        self._thread = threading.Thread(target=self._run, args=(amqp_url,), daemon=True)
        self._thread.start()
        if not self._ready.wait(30):
            raise RuntimeError("the tap could not connect to RabbitMQ")

    def _run(self, amqp_url: str) -> None:
        connection = pika.BlockingConnection(
            connection_parameters(BrokerSettings(amqp_url=amqp_url), "bench")
        )
        channel = connection.channel()
        topology.declare(channel)
        queue = channel.queue_declare("", exclusive=True).method.queue
        channel.queue_bind(queue, topology.RECOGNIZER_EXCHANGE, "#")
        self._ready.set()
        for method, _properties, body in channel.consume(queue, auto_ack=True, inactivity_timeout=0.2):
            if method is not None:
                with contextlib.suppress(ValueError):
                    self.messages.append((time.monotonic(), method.routing_key, json.loads(body)))
            if self._stop.is_set():
                break
        connection.close()

    def last_arrival(self) -> float:
        return self.messages[-1][0] if self.messages else 0.0

    def max_frame(self) -> int:
        return max((int(b.get("frame_seq", -1)) for _, _, b in list(self.messages)), default=-1)

    def bodies(self, prefix: str) -> list[dict[str, Any]]:
        return [body for _, key, body in list(self.messages) if key.startswith(prefix)]

    def close(self) -> None:
        self._stop.set()
        self._thread.join(10)


def _rabbitmqctl(*args: str) -> str:
    ctl = shutil.which("rabbitmqctl") or "/usr/sbin/rabbitmqctl"
    return subprocess.run(  # noqa: S603 (our own arguments)
        [ctl, "-q", *args], check=True, capture_output=True, text=True, timeout=60
    ).stdout


def broker_queues(vhost: str) -> list[tuple[str, int, int]]:
    """(name, consumers, messages ready + unacknowledged) of every queue of the vhost."""
    out = _rabbitmqctl("list_queues", "-p", vhost, "name", "consumers", "messages", "--no-table-headers")
    queues = []
    for line in out.splitlines():
        parts = line.split()
        if len(parts) == 3 and parts[1].isdigit() and parts[2].isdigit():
            queues.append((parts[0], int(parts[1]), int(parts[2])))
    return queues


def frame_consumers(vhost: str) -> int:
    """Consumers of frames, whatever the routing (one shared queue or one per worker or camera):
    every consumer but the recorder's, the dead letters', the gallery listeners' and our tap's."""
    skip = ("recorder.", "dead.", "amq.gen-", "recognizer.gallery", "web.")
    return sum(consumers for name, consumers, _ in broker_queues(vhost) if not name.startswith(skip))


def run_lesson(settings: RunSettings, enrollment: Enrollment, tmp: Path) -> RunResult:
    database_url = fresh_database()
    vhost, amqp_url = fresh_vhost()
    csv_path = tmp / f"{settings.tag}-attendance.csv"
    processes: dict[str, ServiceProcess] = {}
    env = {
        "DATABASE_URL": database_url,
        "AMQP_URL": amqp_url,
        "RECORDER_CSV_PATH": str(csv_path),
        "LOG_LEVEL": "INFO",
        **settings.extra_env,
    }

    def start(name: str, module: str, **more: str) -> ServiceProcess:
        processes[name] = ServiceProcess(module, {**env, **more}, f"{settings.tag}-{name}")
        return processes[name]

    engine = create_engine(DatabaseSettings(database_url=database_url))
    tap: Tap | None = None
    # Where capture can stamp a file's frames with the file's own time, the lesson starts at a
    # moment we choose, so each event's second of the video is its timestamp minus that moment.
    media_start = None
    if "capture_media_start" in CaptureSettings.model_fields:
        media_start = datetime.now(UTC).replace(microsecond=0)
    try:
        session_id = _prepare(engine, settings, enrollment, media_start)
        start("recorder", "services.recorder")
        for n in range(1, settings.recognizers + 1):
            start(f"recognizer-{n}", "services.recognizer", RECOGNIZER_WORKER_ID=f"w{n}")
        wait_until(
            lambda: frame_consumers(vhost) >= settings.recognizers,
            180,
            f"{settings.recognizers} recognizer(s) consuming frames",
            interval_s=1.0,
        )
        tap = Tap(amqp_url)
        started = time.monotonic()
        media: dict[str, str] = {}
        if media_start is not None:
            media["CAPTURE_MEDIA_START"] = media_start.isoformat()
        capture = start(
            "capture",
            "services.capture",
            CAPTURE_SOURCE=str(settings.video),
            CAMERA_ID=CAMERA_ID,
            CAPTURE_FPS=str(settings.capture_fps),
            CAPTURE_PACE=settings.pace,
            CAPTURE_SPEED=str(settings.speed),
            **media,
        )
        killed = _play(settings, capture, processes, tap, started)
        _drain(vhost, tap)
        wall_s = time.monotonic() - started
        tap.close()
        events, tap_only = _events(engine, tap)
        with engine.connect() as connection:
            marks = [_mark(m) for m in fetch_marks(connection)]
            review = _review_items(connection, session_id)
        for process in processes.values():
            process.stop()
        return RunResult(
            settings=settings,
            database_url=database_url if settings.keep_database else None,
            session_id=session_id,
            wall_s=wall_s,
            marks=marks,
            events=events,
            analyzed=tap.bodies("frame.analyzed"),
            frames_published=_published(capture.log()),
            killed=killed,
            csv_rows=_read_csv(csv_path),
            tap_only=tap_only,
            logs={name: str(p.log_path) for name, p in processes.items()},
            media_start=media_start,
            review=review,
        )
    finally:
        if tap is not None:
            tap.close()
        for process in processes.values():
            process.stop()
        engine.dispose()
        remove_vhost(vhost)
        if not settings.keep_database:
            remove_database(database_url)


def _prepare(
    engine: sa.Engine, settings: RunSettings, enrollment: Enrollment, media_start: datetime | None
) -> int | None:
    """Students and their encodings; with a roster, its course and a session covering the lesson."""
    ids: dict[str, int] = {}
    with engine.begin() as connection:
        for number, faces in enrollment.faces.items():
            student = create_student(connection, number, settings.names.get(number, number), Consent("bench"))
            ids[number] = student.id
            for face in faces:
                add_face_encoding(connection, student.id, face)
        if settings.roster is None:
            return None
        for number in sorted(settings.roster - set(ids)):  # on the roster, nothing to enroll
            ids[number] = create_student(connection, number, settings.names.get(number, number)).id
        course = create_course(connection, "LESSON", "The evaluated lesson's class")
        replace_roster(connection, course.id, sorted(ids[n] for n in settings.roster))
        # From a little before the lesson starts (in media time, or capture's clock) to well after.
        now = media_start or datetime.now(UTC)
        wall = settings.duration_s / (settings.speed if settings.pace == "realtime" else 1.0)
        session = create_session(
            connection,
            name="Evaluated lesson",
            camera_id=CAMERA_ID,
            starts_at=now - timedelta(minutes=5),
            ends_at=now + timedelta(seconds=wall + 3600),
            course_id=course.id,
        )
        return session.id


def _play(
    settings: RunSettings,
    capture: ServiceProcess,
    processes: dict[str, ServiceProcess],
    tap: Tap,
    started: float,
) -> dict[str, Any] | None:
    """Wait for capture to reach the end of the file, killing recognizer 1 on the way if asked."""
    killed = None
    realtime_wall = settings.duration_s / settings.speed if settings.pace == "realtime" else 0.0
    deadline = started + max(600.0, 3 * realtime_wall + 120)
    while capture.process.poll() is None:
        if time.monotonic() > deadline:
            raise AssertionError("capture did not reach the end of the video in time")
        at = settings.kill_recognizer_at_s
        if killed is None and at is not None and tap.max_frame() >= at * settings.video_fps:
            victim = processes["recognizer-1"]
            victim.process.kill()  # SIGKILL: a worker dying, not one shutting down
            killed = {
                "worker": "w1",
                "media_s": round(tap.max_frame() / settings.video_fps, 2),
                "wall_s": round(time.monotonic() - started, 2),
            }
        time.sleep(0.1)
    if capture.process.returncode != 0:
        raise AssertionError(f"capture failed (exit {capture.process.returncode}); see {capture.log_path}")
    return killed


def _drain(vhost: str, tap: Tap, quiet_s: float = 3.0, timeout_s: float = 600.0) -> None:
    """Until every queue is empty (nothing ready, nothing unacknowledged) and the recognizers
    have said nothing for `quiet_s`: every frame analyzed or expired, every event recorded."""

    def idle() -> bool:
        busy = [m for name, _, m in broker_queues(vhost) if not name.startswith(("dead.", "amq.gen-")) and m]
        return not busy and time.monotonic() - tap.last_arrival() >= quiet_s

    wait_until(idle, timeout_s, "the system to finish the lesson", interval_s=0.5)
    wait_until(idle, timeout_s, "the system to stay idle", interval_s=0.5)


def _events(engine: sa.Engine, tap: Tap) -> tuple[list[dict[str, Any]], int]:
    with engine.connect() as connection:
        rows = connection.execute(
            sa.text(
                "SELECT e.event_id, e.kind, e.camera_id, e.frame_seq, e.captured_at, e.student_id, "
                "s.student_number, e.distance, e.tracked, e.session_id FROM identity_events e "
                "LEFT JOIN students s ON s.id = e.student_id ORDER BY e.captured_at, e.id"
            )
        ).all()
    published = {str(b.get("event_id")): b for b in tap.bodies("face.")}
    events = []
    for r in rows:
        body = published.pop(str(r.event_id), {})
        events.append(
            {
                "event_id": str(r.event_id),
                "kind": r.kind,
                "camera_id": r.camera_id,
                "frame_seq": int(r.frame_seq),
                "captured_at": as_utc(r.captured_at).isoformat(),
                "student_number": r.student_number,
                "distance": None if r.distance is None else round(float(r.distance), 4),
                "tracked": bool(r.tracked),
                "session_id": r.session_id,
                "box": body.get("box"),
                "worker": body.get("worker"),
                "margin": body.get("margin"),
                # Newer workers say which track an event belongs to and how sure its decision is.
                "track_id": body.get("track_id"),
                "tier": (body.get("evidence") or {}).get("tier"),
            }
        )
    return events, len(published)


def _review_items(connection: sa.Connection, session_id: int | None) -> list[dict[str, Any]]:
    """What a teacher is asked to look at: the session's review items (services/recorder/review.py)."""
    if session_id is None:
        return []
    rows = connection.execute(
        sa.text(
            "SELECT r.track_id, r.state, s.student_number AS candidate "
            "FROM review_items r LEFT JOIN students s ON s.id = r.candidate_id "
            "WHERE r.session_id = :session ORDER BY r.id"
        ),
        {"session": session_id},
    ).all()
    return [{"track_id": r.track_id, "state": r.state, "candidate": r.candidate} for r in rows]


def _mark(mark: Any) -> dict[str, Any]:
    return {
        "attendance_id": mark.attendance_id,
        "session_id": mark.session_id,
        "student_number": mark.student_number,
        "student_name": mark.student_name,
        "status": mark.status,
        "first_seen_at": mark.first_seen_at.isoformat(),
        "distance": round(mark.distance, 4),
        "best_distance": round(mark.best_distance, 4),
        "sightings": mark.sightings,
        "confidence": mark.confidence,
        "event_id": mark.event_id,
    }


def _published(log: str) -> int | None:
    marker = " frames published"
    if marker not in log:
        return None
    try:
        return int(log.split(marker, maxsplit=1)[0].rsplit(" ", 1)[-1])
    except ValueError:
        return None


def _read_csv(path: Path) -> list[dict[str, str]]:
    if not path.exists():
        return []
    with path.open(newline="", encoding="utf-8") as handle:
        return list(csv.DictReader(handle))


def default_min_face_px() -> int:
    """The API's enrollment floor, as the deployed system would apply it."""
    return int(os.environ.get("API_MIN_FACE_PX", DEFAULT_MIN_FACE_PX))
