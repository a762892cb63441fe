"""The recorder's logic: validate identity events, persist them, then append the CSV and
announce new marks. No pika here: the consumer loop in services.common.amqp drives it.

The CSV follows MySQL, not the batch: after every batch, every mark committed beyond the
file's last row is appended (the file knows its rows by event_id, so nothing is written
twice). So a commit whose acknowledgement was lost (MySQL committed, the connection broke
before it said so, the retry finds the events already recorded) still reaches the CSV, and so
does a mark whose append failed on a full disk. A mark the CSV lacked at start (committed just
before a crash) was never announced either: it is announced with the first message handled.

Before each batch the single-recorder lock is checked (single.py); while a batch is
unfinished, the health file says since when (health.py).
"""

import logging
import threading
from collections.abc import Callable
from datetime import UTC, datetime, timedelta
from typing import Protocol

from pydantic import ValidationError

from services.common import topology
from services.common.attendance import AttendanceMark
from services.common.db import TRANSIENT_DB_ERRORS
from services.common.messages import AttendanceMarked, CameraHeartbeat, identity_event_adapter
from services.common.transport import Delivery, Handled, Outgoing, TransientError
from services.recorder.csv_journal import CsvJournal
from services.recorder.health import Liveness
from services.recorder.single import AnotherRecorderError
from services.recorder.store import AttendanceStore

logger = logging.getLogger(__name__)

ANNOUNCE_RECOVERED_WITHIN = timedelta(days=1)


class Guard(Protocol):
    def check(self) -> None: ...


class AttendanceRecorder:
    def __init__(
        self,
        store: AttendanceStore,
        journal: CsvJournal,
        *,
        guard: Guard | None = None,
        liveness: Liveness | None = None,
        stop: threading.Event | None = None,
    ) -> None:
        self.store = store
        self.journal = journal
        self.guard = guard  # the single-recorder lock (single.py), checked before each batch
        self.liveness = liveness
        self.stop = stop or threading.Event()
        self.fatal: str | None = None  # why this recorder stopped itself
        self._csv_last_id = 0  # the newest attendance row the CSV has
        # Marks restored to the CSV at start, announced with the next message handled.
        self._unannounced: list[Outgoing] = []
        self._unannounced_lock = threading.Lock()
        self.events_recorded = 0
        self.redeliveries = 0

    def start(self) -> None:
        """Open the CSV and bring it level with MySQL (it may be behind after a crash)."""
        self.journal.open()
        self._report_csv()
        marks = self.store.all_marks()
        recovered = self.journal.reconcile(marks)  # afterwards the file holds every mark MySQL has
        self._csv_last_id = max((m.attendance_id for m in marks), default=0)
        # A mark the CSV lacked was committed just before a crash: it was never announced
        # either. Recent ones are announced now (a CSV rebuilt from scratch must not replay
        # years of marks to the dashboard).
        since = datetime.now(UTC) - ANNOUNCE_RECOVERED_WITHIN
        self._unannounced = [_announcement(m) for m in recovered if m.marked_at >= since]

    def handle(self, deliveries: list[Delivery]) -> list[Handled]:
        """The identity events' handler."""
        return self._tracked("identity events", self._handle, deliveries)

    def handle_heartbeats(self, deliveries: list[Delivery]) -> list[Handled]:
        """The camera heartbeats' handler."""
        return self._tracked("camera heartbeats", self._handle_heartbeats, deliveries)

    def _tracked(
        self, name: str, handler: Callable[[list[Delivery]], list[Handled]], deliveries: list[Delivery]
    ) -> list[Handled]:
        """Run a handler, telling the health file while its batch is unfinished."""
        if self.liveness is None:
            return handler(deliveries)
        self.liveness.batch_started(name)
        try:
            results = handler(deliveries)
        except TransientError:
            raise  # the same batch is retried: it stays unfinished
        except Exception:
            self.liveness.batch_done(name)  # the consumer dead-letters it: finished
            raise
        self.liveness.batch_done(name)
        return results

    def _handle(self, deliveries: list[Delivery]) -> list[Handled]:
        self._check_guard()
        results: list[Handled | None] = [None] * len(deliveries)
        valid = []
        for index, delivery in enumerate(deliveries):
            if delivery.exchange is not None and delivery.exchange != topology.RECOGNIZER_EXCHANGE:
                # Only recognizers may publish there (rabbitmq/permissions.json); an event that
                # reached the queue any other way (a binding someone added) is forged.
                results[index] = Handled(
                    rejected=f"identity event not from the recognizers ({delivery.exchange!r})"
                )
                continue
            try:
                valid.append((index, identity_event_adapter.validate_json(delivery.body)))
            except ValidationError as error:
                results[index] = Handled(rejected=f"invalid identity event: {_first_problem(error)}")
        try:
            batch = self.store.record([event for _, event in valid])
            written = self._catch_up_csv(batch.marks)
        except TRANSIENT_DB_ERRORS as error:
            raise TransientError(f"MySQL unavailable: {getattr(error, 'orig', error)}") from error
        self.events_recorded += batch.fresh_events
        self.redeliveries += len(valid) - batch.fresh_events
        announcements: dict[str, list[Outgoing]] = {}
        for mark in {m.attendance_id: m for m in [*batch.marks, *written]}.values():
            announcements.setdefault(mark.event_id, []).append(_announcement(mark))
        for index, event in valid:
            # pop: a duplicate of the event in the same batch must not announce the mark again
            results[index] = Handled(publish=announcements.pop(str(event.event_id), []))
        # Marks of an earlier attempt whose commit was not acknowledged, and marks restored at start.
        leftovers = [outgoing for group in announcements.values() for outgoing in group]
        if valid:
            leftovers += self._take_unannounced()
        if leftovers:
            first = valid[0][0]
            results[first] = Handled(publish=[*(results[first] or Handled()).publish, *leftovers])
        return [result or Handled() for result in results]

    def _check_guard(self) -> None:
        if self.guard is None:
            return
        try:
            self.guard.check()
        except AnotherRecorderError as error:
            self.fatal = str(error)
            logger.error("stopping: %s", error)
            self.stop.set()  # the consumer requeues this batch for the recorder that holds the lock
            raise TransientError(f"stopping: {error}") from error

    def _take_unannounced(self) -> list[Outgoing]:
        with self._unannounced_lock:
            taken, self._unannounced = self._unannounced, []
        return taken

    def _handle_heartbeats(self, deliveries: list[Delivery]) -> list[Handled]:
        results = []
        for delivery in deliveries:
            try:
                heartbeat = CameraHeartbeat.model_validate_json(delivery.body)
            except ValidationError as error:
                results.append(Handled(rejected=f"invalid heartbeat: {_first_problem(error)}"))
                continue
            try:
                self.store.record_heartbeat(heartbeat)
            except TRANSIENT_DB_ERRORS as error:
                raise TransientError(f"MySQL unavailable: {getattr(error, 'orig', error)}") from error
            results.append(Handled())
        for index, handled in enumerate(results):  # the first heartbeat accepted carries them
            if handled.rejected is None:
                results[index] = Handled(publish=self._take_unannounced())
                break
        return results

    def _catch_up_csv(self, created: list[AttendanceMark]) -> list[AttendanceMark]:
        """Append every committed mark the CSV lacks; the marks appended."""
        if self.journal.problem is not None:
            if not self.journal.retry():
                return []
            self._report_csv()  # moved aside or mended: bring the new file level with MySQL
            marks = self.store.all_marks()
            self._append(marks)
            self._csv_last_id = max((m.attendance_id for m in marks), default=0)
            return []  # announced when they were made
        if any(m.attendance_id <= self._csv_last_id for m in created):
            # Ids went backwards: the database was reset under us. Rows are keyed by event_id,
            # so the new marks are told from the old rows that share their ids.
            logger.warning("attendance ids restarted (the database was reset?): reconciling the CSV")
            marks = self.store.all_marks()
            self._csv_last_id = 0
        else:
            marks = self.store.marks_after(self._csv_last_id)
        written = self._append(marks)
        if written is None:  # MySQL has them: the next batch (or start) tries again
            return []
        self._csv_last_id = max([self._csv_last_id, *(m.attendance_id for m in marks)])
        return written

    def _append(self, marks: list[AttendanceMark]) -> list[AttendanceMark] | None:
        try:
            return self.journal.append(marks)
        except OSError as error:
            logger.error(
                "cannot append %d row(s) to %s (%s); will retry", len(marks), self.journal.path, error
            )
            return None

    def _report_csv(self) -> None:
        if self.liveness is not None:
            self.liveness.problem("csv", self.journal.problem)


def _announcement(mark: AttendanceMark) -> Outgoing:
    message = AttendanceMarked.model_validate(mark)
    return Outgoing(topology.ATTENDANCE_EXCHANGE, topology.attendance_key(mark.camera_id), message)


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]
