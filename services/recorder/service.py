"""The recorder's logic: validate identity events, persist them, then append the CSV and
announce new marks. No pika here: the consumer loop in services.common.amqp drives it.

The CSV follows MySQL, not the batch: after every batch, every mark committed beyond the
file's last row is appended. So a commit whose acknowledgement was lost (MySQL committed,
the connection broke before it said so, the retry finds the events already recorded) still
reaches the CSV, and so does a mark whose append failed on a full disk.
"""

import logging

from pydantic import ValidationError

from services.common import topology
from services.common.attendance import AttendanceMark
from services.common.db import TRANSIENT_DB_ERRORS
from services.common.messages import AttendanceMarked, CameraHeartbeat, identity_event_adapter
from services.common.transport import Delivery, Handled, Outgoing, TransientError
from services.recorder.csv_journal import CsvJournal
from services.recorder.store import AttendanceStore

logger = logging.getLogger(__name__)


class AttendanceRecorder:
    def __init__(self, store: AttendanceStore, journal: CsvJournal) -> None:
        self.store = store
        self.journal = journal
        self._csv_last_id = 0  # the newest attendance row the CSV has
        self.events_recorded = 0
        self.redeliveries = 0

    def start(self) -> None:
        """Open the CSV and bring it level with MySQL (it may be behind after a crash)."""
        self.journal.open()
        marks = self.store.all_marks()
        self.journal.reconcile(marks)  # afterwards the file holds every mark MySQL has
        self._csv_last_id = max((m.attendance_id for m in marks), default=0)

    def handle(self, deliveries: list[Delivery]) -> list[Handled]:
        results: list[Handled | None] = [None] * len(deliveries)
        valid = []
        for index, delivery in enumerate(deliveries):
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
        announcements: dict[str, list[Outgoing]] = {}
        for mark in {m.attendance_id: m for m in [*batch.marks, *written]}.values():
            announcements.setdefault(mark.event_id, []).append(_announcement(mark))
        for index, event in valid:
            # pop: a duplicate of the event in the same batch must not announce the mark again
            results[index] = Handled(publish=announcements.pop(str(event.event_id), []))
        leftovers = [outgoing for group in announcements.values() for outgoing in group]
        if leftovers and valid:  # marks of an earlier attempt whose commit was not acknowledged
            first = valid[0][0]
            results[first] = Handled(publish=[*(results[first] or Handled()).publish, *leftovers])
        return [result or Handled() for result in results]

    def handle_heartbeats(self, deliveries: list[Delivery]) -> list[Handled]:
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
        return results

    def _catch_up_csv(self) -> list[AttendanceMark]:
        """Append every mark committed since the CSV's last row; the marks appended."""
        marks = self.store.marks_after(self._csv_last_id)
        if not marks:
            return []
        try:
            self.journal.append(marks)
        except OSError as error:  # MySQL has them: the next batch (or start) tries again
            logger.error(
                "cannot append %d row(s) to %s (%s); will retry", len(marks), self.journal.path, error
            )
            return []
        self._csv_last_id = max(m.attendance_id for m in marks)
        return marks


def _announcement(mark: AttendanceMark) -> Outgoing:
    message = AttendanceMarked.model_validate(mark)
    return Outgoing(topology.ATTENDANCE_EXCHANGE, topology.attendance_key(mark.camera_id), message)


def _first_problem(error: ValidationError) -> str:
    problem = error.errors()[0]
    where = ".".join(str(part) for part in problem["loc"])
    return f"{where}: {problem['msg']}" if where else problem["msg"]
