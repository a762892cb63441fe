"""The attendance CSV: a header and one row per attendance mark, appended after each commit.

MySQL is the source of truth. A crash between the commit and the append would leave the CSV
a row short, so at start the recorder reconciles: every mark in MySQL whose `event_id` is not
in the file is appended (and a line torn by a crash mid-write is cut off first). Rows are
keyed by `event_id`, the UUID of the sighting that made the mark, not by `attendance_id`: a
database that is reset (or restored) while the file is kept starts its ids again at 1, and an
old row with the same id must not pass for a new mark. The file then holds every mark MySQL
has; rows of an older database stay, as history. One recorder owns the file (see `single.py`).

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

from services.common.attendance import CSV_COLUMNS, AttendanceMark, csv_line

logger = logging.getLogger(__name__)

BOM = b"\xef\xbb\xbf"


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

    def append(self, marks: Iterable[AttendanceMark]) -> list[AttendanceMark]:
        """Append the marks the file lacks; the marks appended (none while the file is refused)."""
        if self.problem is not None:
            return []
        missing = {mark.event_id: mark for mark in marks if mark.event_id not in self._events}
        if missing:
            self._write([mark.csv_row(self.tz) for mark in missing.values()])
            self._events.update(missing)
        return list(missing.values())

    def reconcile(self, marks: list[AttendanceMark]) -> list[AttendanceMark]:
        """Append every mark missing from the file; returns the marks that were missing."""
        if self.problem is not None:
            return []
        missing = [mark for mark in marks if mark.event_id not in self._events]
        if missing:
            logger.warning("CSV was %d row(s) behind MySQL; appending them now", len(missing))
            missing = self.append(missing)
        extra = self._events - {mark.event_id for mark in marks}
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
            if tuple(header) != CSV_COLUMNS:
                raise _RefusedError(self._header_problem(header))
            at = CSV_COLUMNS.index("event_id")
            self._events = {row[at] for row in reader if len(row) > at and row[at]}

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
            if b"\n" in data and _complete_row(data[start:]):
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


def _complete_row(line: bytes) -> bool:
    """A whole row: every column, the last one (marked_at) a whole timestamp."""
    try:
        row = next(csv.reader([line.decode("utf-8")]), [])
    except (UnicodeDecodeError, csv.Error):
        return False
    if len(row) != len(CSV_COLUMNS):
        return False
    with contextlib.suppress(ValueError):
        return len(row[-1]) >= len("2026-01-01T00:00:00") and bool(datetime.fromisoformat(row[-1]))
    return False
