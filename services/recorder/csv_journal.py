"""The attendance CSV: an append-only journal of attendance (docs/attendance-record.md,
"Corrections and the journal"): a header, one row per mark, appended after each commit, and
one row per change of a mark's status (whoever made it), appended in id order on the
recorder's tick. A change is never an edit in place: its row names the mark it changes
(`corrects`, the mark's `event_id`).

MySQL is the source of truth. A crash between the commit and the append would leave the CSV
a row short, so at start the recorder reconciles: every mark and change in MySQL whose
`event_id` is not in the file is appended (and a line torn by a crash mid-write is cut off
first). Rows are keyed by `event_id` (a mark's: the UUID of the sighting that made it, or a
fresh one for a person's or the system's mark; a change's: its `change_event_id`), not by
`attendance_id`: a database that is reset (or restored) while the file is kept starts its ids
again at 1, and an old row with the same id must not pass for a new mark. The file then holds
every row MySQL has; rows of an older database stay, as history. One recorder owns the file
(see `single.py`).

A file of the previous layout (before `source`, `reason`, `corrects`) is upgraded at open:
rewritten whole to a temporary file beside it, with those cells (its rows were all made by
recognition), then renamed over it, so a crash leaves the old file or the new, never half.

The file may have been opened and saved by a spreadsheet: a UTF-8 byte-order mark and CRLF
line ends are accepted, and rows are appended in the file's own line ends. A file that is not
ours (other columns, another encoding, unreadable) is left untouched: the recorder keeps
recording to MySQL, says once, clearly, what is wrong and what to do (`problem`, also shown by
the health check), and picks the file up again as soon as it is moved aside or mended.
"""

import contextlib
import csv
import logging
import os
from collections.abc import Iterable
from datetime import datetime
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from services.common.attendance import (
    CSV_COLUMNS,
    PREVIOUS_CSV_COLUMNS,
    AttendanceChange,
    AttendanceMark,
    JournalRow,
    csv_line,
)

logger = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"
# What an upgraded row of the previous layout gets: its marks were all made by recognition.
UPGRADE_CELLS = ("recognition", "", "")


def journal_key(row: JournalRow) -> str:
    """The row's key in the file (its `event_id` cell)."""
    return row.change_event_id if isinstance(row, AttendanceChange) else row.event_id


class CsvJournal:
    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self.path = path
        self.tz = tz
        # Why the file is not being written (None: it is). Set by open(), cleared by retry().
        self.problem: str | None = None
        self._newline = "\n"  # the file's own line end, which appended rows follow
        self._events: set[str] = set()  # event_id of every row in the file
        self._seen_state: tuple[int, int, int] | None = None  # the file as it was when refused

    def open(self) -> bool:
        """Create the file with its header, or check and repair an existing one, and read
        which marks it holds. False (and `problem` says why, logged once) if it cannot be used."""
        try:
            self._open()
        except _RefusedError as refused:
            self._refuse(str(refused))
        except UnicodeDecodeError as error:
            self._refuse(
                f"{self.path} is not UTF-8 text ({error.reason} at byte {error.start}); it was "
                "probably saved by a spreadsheet in another encoding"
            )
        except (OSError, csv.Error) as error:
            self._refuse(f"cannot use {self.path}: {error}")
        else:
            if self.problem is not None:
                logger.info("%s is usable again: writing attendance to it", self.path)
            self.problem = None
        return self.problem is None

    def retry(self) -> bool:
        """If the file was refused and has changed since (moved aside, mended): open it again."""
        if self.problem is None:
            return True
        if self._state() == self._seen_state:
            return False
        return self.open()

    def has(self, event_id: str) -> bool:
        return event_id in self._events

    def logged_events(self) -> set[str]:
        return set(self._events)

    def append(self, rows: Iterable[JournalRow]) -> list[JournalRow]:
        """Append the rows the file lacks, in the order given; the rows appended (none while
        the file is refused)."""
        if self.problem is not None:
            return []
        missing: dict[str, JournalRow] = {}
        for row in rows:
            key = journal_key(row)
            if key not in self._events and key not in missing:
                missing[key] = row
        if missing:
            self._write([row.csv_row(self.tz) for row in missing.values()])
            self._events.update(missing)
        return list(missing.values())

    def reconcile(self, marks: list[AttendanceMark], changes: list[AttendanceChange]) -> list[JournalRow]:
        """Append every mark, then every change, missing from the file; returns those rows."""
        if self.problem is not None:
            return []
        rows: list[JournalRow] = [*marks, *changes]
        missing = [row for row in rows if journal_key(row) not in self._events]
        if missing:
            logger.warning("CSV was %d row(s) behind MySQL; appending them now", len(missing))
            missing = self.append(missing)
        extra = self._events - {journal_key(row) for row in rows}
        if extra:
            logger.warning(
                "CSV has %d row(s) that MySQL does not (kept: from an older database, or MySQL "
                "rows deleted since)",
                len(extra),
            )
        return missing

    # ---- the file ----

    def _open(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._mend_last_line()
        if not self.path.exists() or self.path.stat().st_size in (0, len(BOM)):
            self._newline = "\n"
            self._events = set()
            with self.path.open("w", newline="", encoding="utf-8") as file:
                file.write(csv_line(CSV_COLUMNS, self._newline))
                file.flush()
                os.fsync(file.fileno())
            return
        with self.path.open("rb") as raw:
            self._newline = "\r\n" if raw.readline().endswith(b"\r\n") else "\n"
        with self.path.open(newline="", encoding="utf-8-sig") as file:  # -sig: without the BOM
            reader = csv.reader(file)
            header = next(reader, [])
            previous = tuple(header) == PREVIOUS_CSV_COLUMNS
            if not previous and tuple(header) != CSV_COLUMNS:
                raise _RefusedError(self._header_problem(header))
            at = CSV_COLUMNS.index("event_id")
            self._events = {row[at] for row in reader if len(row) > at and row[at]}
        if previous:
            self._upgrade()

    def _upgrade(self) -> None:
        """Rewrite a file of the previous layout in this one, atomically (temp file + rename),
        keeping every row, its line ends and its byte-order mark."""
        with self.path.open("rb") as raw:
            bom = raw.read(len(BOM)) == BOM
        temporary = self.path.with_name(f".{self.path.name}.upgrade")
        rows = 0
        with (
            self.path.open(newline="", encoding="utf-8-sig") as old,
            temporary.open("w", newline="", encoding="utf-8-sig" if bom else "utf-8") as new,
        ):
            reader = csv.reader(old)
            next(reader)
            new.write(csv_line(CSV_COLUMNS, self._newline))
            for row in reader:
                new.write(csv_line([*row, *UPGRADE_CELLS], self._newline))
                rows += 1
            new.flush()
            os.fsync(new.fileno())
        temporary.replace(self.path)
        directory = os.open(self.path.parent, os.O_RDONLY)
        try:
            os.fsync(directory)  # the rename itself survives a crash
        finally:
            os.close(directory)
        logger.warning(
            "upgraded %s to the layout with source, reason and corrects (%d row(s) kept)", self.path, rows
        )

    def _header_problem(self, header: list[str]) -> str:
        if len(header) == 1 and ";" in header[0]:
            how = "its columns are separated by ';' (a spreadsheet's regional setting), not ','"
        else:
            how = f"its header is {','.join(header)!r}"
        return f"{self.path} is not this recorder's attendance CSV: {how}; expected {','.join(CSV_COLUMNS)!r}"

    def _refuse(self, what: str) -> None:
        self._seen_state = self._state()
        if self.problem is None:  # said once, not at every batch
            logger.error(
                "%s. Attendance is still recorded to MySQL, but not to this file. To fix it, move it "
                "aside (or set RECORDER_CSV_PATH to a new file): the recorder then writes a new file "
                "with every mark MySQL has, without a restart",
                what,
            )
        self.problem = f"{what}: move it aside (or set RECORDER_CSV_PATH to a new file)"

    def _state(self) -> tuple[int, int, int]:
        try:
            stat = self.path.stat()
        except OSError:
            return (0, 0, 0)
        return (1, stat.st_size, stat.st_mtime_ns)

    def _write(self, rows: list[list[str]]) -> None:
        # One write of whole lines, then fsync: after a crash a row is complete or absent
        # (a torn last line is cut by the next open()).
        with self.path.open("a", newline="", encoding="utf-8") as file:
            file.write("".join(csv_line(row, self._newline) for row in rows))
            file.flush()
            os.fsync(file.fileno())

    def _mend_last_line(self) -> None:
        """A last line without its line end: complete (a spreadsheet saved it so) gets its line
        end; torn by a crash mid-write, it is cut off (MySQL has the mark: reconcile restores it)."""
        with self.path.open("rb+") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 1))
            if size == 0 or file.read(1) == b"\n":
                return
            data = self._tail(file, size)
            start = data.rfind(b"\n") + 1
            file.seek(0)
            previous = (
                file.readline().removeprefix(BOM).rstrip(b"\r\n") == ",".join(PREVIOUS_CSV_COLUMNS).encode()
            )
            columns = PREVIOUS_CSV_COLUMNS if previous else CSV_COLUMNS
            if b"\n" in data and _complete_row(data[start:], columns):
                newline = b"\r\n" if data[:start].endswith(b"\r\n") else b"\n"
                file.seek(0, os.SEEK_END)
                file.write(newline)
                return
            keep = size - len(data) + start if b"\n" in data else 0
            logger.warning("cutting a torn last line from %s (%d bytes)", self.path, size - keep)
            file.truncate(keep)

    @staticmethod
    def _tail(file: BinaryIO, size: int) -> bytes:
        chunk = min(size, 1 << 16)
        file.seek(size - chunk)
        return file.read(chunk)


class _RefusedError(Exception):
    pass


def _complete_row(line: bytes, columns: tuple[str, ...]) -> bool:
    """A whole row of this layout: every column, `marked_at` a whole timestamp, `corrects`
    (if the layout has it) empty or a whole UUID."""
    try:
        row = next(csv.reader([line.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):
        return False
    if len(row) != len(columns):
        return False
    marked_at = row[columns.index("marked_at")]
    corrects = row[columns.index("corrects")] if "corrects" in columns else ""
    if corrects and len(corrects) != len("00000000-0000-0000-0000-000000000000"):
        return False
    with contextlib.suppress(ValueError):
        return len(marked_at) >= len("2026-01-01T00:00:00") and bool(datetime.fromisoformat(marked_at))
    return False
