"""The recorder's logic: validate identity events, persist them, then append the CSV and
announce new marks. No pika here: the consumer loop in services.common.amqp drives it.

The CSV follows MySQL, not the batch: after every batch, every mark and change committed
beyond the file's last rows is appended (the file knows its rows by event_id, so nothing is
written twice). So a commit whose acknowledgement was lost (MySQL committed, the connection
broke before it said so, the retry finds the events already recorded) still reaches the CSV,
and so does a row whose append failed on a full disk. A row the CSV lacked at start
(committed just before a crash) was never announced either: it is announced with the first
message handled, or on the first tick.

On its tick (`tick`, every RECORDER_TICK_S) the recorder makes the timetable's sessions of the
next days (services/common/timetable.py), decides the absences of the sessions that ended,
and journals (and announces) the marks and changes others made: people through the API, the
system's absences. Those are written in their own transactions, so the tick
looks a little behind its last rows too (RESCAN_ROWS): a transaction that took a lower id but
committed after a higher one is still journaled.

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
from services.common.attendance import AttendanceChange, AttendanceMark, JournalRow
from services.common.db import TRANSIENT_DB_ERRORS
from services.common.messages import (
    AttendanceChanged,
    AttendanceMarked,
    CameraHeartbeat,
    identity_event_adapter,
)
from services.common.transport import Delivery, Handled, Outgoing, TransientError
from services.recorder.csv_journal import CsvJournal
from services.recorder.health import Liveness
from services.recorder.single import AnotherRecorderError
from services.recorder.store import AttendanceStore

logger = logging.getLogger(__name__)

ANNOUNCE_RECOVERED_WITHIN = timedelta(days=1)
# How far behind its last journaled ids the tick looks again (see the module docstring).
RESCAN_ROWS = 1000
# How often the tick makes the timetable's sessions ahead (a new day needs them within this).
TIMETABLE_EVERY = timedelta(minutes=5)


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
        absent_after: timedelta = timedelta(0),
        timetable_days_ahead: int = 14,
    ) -> None:
        self.store = store
        self.journal = journal
        # How long after a session's end its absences are decided (sightings in flight arrive first).
        self.absent_after = absent_after
        # Today's and the next days' sessions of the weekly slots are made on the tick, at most
        # once a TIMETABLE_EVERY (and at the first tick), so they exist without anyone creating them.
        self.timetable_days_ahead = timetable_days_ahead
        self._timetable_due = datetime.min.replace(tzinfo=UTC)
        self.guard = guard  # the single-recorder lock (single.py), checked before each batch
        self.liveness = liveness
        self.stop = stop or threading.Event()
        self.fatal: str | None = None  # why this recorder stopped itself
        # The newest attendance and attendance_changes rows the CSV has (by id).
        self._csv_last_id = 0
        self._csv_last_change_id = 0
        # The batch handler and the tick both append to the CSV: one at a time.
        self._csv_lock = threading.Lock()
        # Marks restored to the CSV at start, announced with the next message handled.
        self._unannounced: list[Outgoing] = []
        self._unannounced_lock = threading.Lock()
        self.events_recorded = 0
        self.redeliveries = 0

    def start(self) -> None:
        """Open the CSV and bring it level with MySQL (it may be behind after a crash)."""
        self.journal.open()
        self._report_csv()
        marks, changes = self.store.all_marks(), self.store.all_changes()
        # Afterwards the file holds every mark and change MySQL has.
        recovered = self.journal.reconcile(marks, changes)
        self._csv_last_id = max((m.attendance_id for m in marks), default=0)
        self._csv_last_change_id = max((c.change_id for c in changes), default=0)
        # A row the CSV lacked was committed just before a crash: it was never announced
        # either. Recent ones are announced now (a CSV rebuilt from scratch must not replay
        # years of marks to the dashboard).
        since = datetime.now(UTC) - ANNOUNCE_RECOVERED_WITHIN
        self._unannounced = [_announcement(row) for row in recovered if _made_at(row) >= since]

    def tick(self) -> list[Outgoing]:
        """Make the timetable's sessions ahead, decide the absences of ended sessions, then
        journal what the CSV lacks; the announcements of what was journaled (and of rows
        restored at start)."""
        now = datetime.now(UTC)
        try:
            if now >= self._timetable_due:
                self.store.make_timetable_sessions(now, self.timetable_days_ahead)
                self._timetable_due = now + TIMETABLE_EVERY
            self.store.decide_absences(now, self.absent_after)
        finally:  # even if deciding failed, what others committed is journaled
            written = self._catch_up_csv(rescan=RESCAN_ROWS)
        return [*self._take_unannounced(), *(_announcement(row) for row in written)]

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
            written = self._catch_up_csv()
        except TRANSIENT_DB_ERRORS as error:
            raise TransientError(f"MySQL unavailable: {getattr(error, 'orig', error)}") from error
        self.events_recorded += batch.fresh_events
        self.redeliveries += len(valid) - batch.fresh_events
        # Each announcement goes with the event that caused it; the rest with the first event.
        made: list[JournalRow] = [*batch.marks, *batch.changes]
        rows: dict[str, JournalRow] = {_key(row): row for row in [*made, *written]}
        caused_by = {_key(row): _cause(row) for row in made}
        announcements: dict[str, list[Outgoing]] = {}
        for key, row in rows.items():
            announcements.setdefault(caused_by.get(key, key), []).append(_announcement(row))
        for index, event in valid:
            # pop: a duplicate of the event in the same batch must not announce the mark again
            results[index] = Handled(publish=announcements.pop(str(event.event_id), []))
        # Marks of an earlier attempt whose commit was not acknowledged, and marks restored at start.
        leftovers = [outgoing for group in announcements.values() for outgoing in group]
        if valid:
            leftovers += self._take_unannounced()
        if leftovers and valid:
            first = valid[0][0]
            results[first] = Handled(publish=[*(results[first] or Handled()).publish, *leftovers])
        elif leftovers:  # nothing valid to carry them: the next tick does
            with self._unannounced_lock:
                self._unannounced += leftovers
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

    def _catch_up_csv(self, rescan: int = 0) -> list[JournalRow]:
        """Append every committed mark and change the CSV lacks (looking `rescan` rows behind
        the last ones it has); the rows appended."""
        with self._csv_lock:
            if self.journal.problem is not None:
                if not self.journal.retry():
                    return []
                self._report_csv()  # moved aside or mended: bring the new file level with MySQL
                self._csv_last_id = self._csv_last_change_id = 0
                rescan = 0
            marks, changes, top_mark, top_change = self.store.unjournaled(
                self.journal.has,
                max(0, self._csv_last_id - rescan),
                max(0, self._csv_last_change_id - rescan),
            )
            if top_mark < self._csv_last_id or top_change < self._csv_last_change_id:
                self._csv_last_id = self._csv_last_change_id = 0  # reset under us: see unjournaled
            written = self._append([*marks, *changes])  # a mark before the changes of it
            if written is None:  # MySQL has them: the next batch (or tick) tries again
                return []
            self._csv_last_id = max(self._csv_last_id, top_mark)
            self._csv_last_change_id = max(self._csv_last_change_id, top_change)
            return written

    def _append(self, rows: list[JournalRow]) -> list[JournalRow] | None:
        try:
            return self.journal.append(rows)
        except OSError as error:
            logger.error(
                "cannot append %d row(s) to %s (%s); will retry", len(rows), self.journal.path, error
            )
            return None

    def _report_csv(self) -> None:
        if self.liveness is not None:
            self.liveness.problem("csv", self.journal.problem)


def _announcement(row: JournalRow) -> Outgoing:
    if isinstance(row, AttendanceChange):
        change = AttendanceChanged.model_validate(row)
        return Outgoing(topology.ATTENDANCE_EXCHANGE, topology.attendance_change_key(row.camera_id), change)
    mark = AttendanceMarked.model_validate(row)
    return Outgoing(topology.ATTENDANCE_EXCHANGE, topology.attendance_key(row.camera_id), mark)


def _key(row: JournalRow) -> str:
    return row.change_event_id if isinstance(row, AttendanceChange) else row.event_id


def _cause(row: AttendanceMark | AttendanceChange) -> str:
    """The identity event a batch's row came from: a mark's own; a change's mark (the batch
    does not say which sighting undid an absence, so it goes with the first event)."""
    return row.event_id if isinstance(row, AttendanceMark) else ""


def _made_at(row: JournalRow) -> datetime:
    return row.changed_at if isinstance(row, AttendanceChange) else row.marked_at


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]
