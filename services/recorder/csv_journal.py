"""The attendance CSV: a header and one row per attendance mark, appended after each commit.

MySQL is the source of truth. A crash between the commit and the append would leave the CSV
a row short, so at start the recorder reconciles: every mark in MySQL whose attendance_id is
not in the file is appended (and a line torn by a crash mid-write is cut off first). The CSV
then agrees with MySQL row for row. One recorder owns the file.
"""

import csv
import logging
import os
from collections.abc import Iterable
from pathlib import Path
from typing import BinaryIO
from zoneinfo import ZoneInfo

from services.common.attendance import CSV_COLUMNS, AttendanceMark

logger = logging.getLogger(__name__)


class CsvHeaderError(RuntimeError):
    """The file exists with other columns: refuse to mix two formats in one file."""


class CsvJournal:
    def __init__(self, path: Path, tz: ZoneInfo) -> None:
        self.path = path
        self.tz = tz

    def open(self) -> None:
        """Create the file with its header, or check and repair an existing one."""
        self.path.parent.mkdir(parents=True, exist_ok=True)
        if self.path.exists():
            self._cut_torn_line()
        if not self.path.exists() or self.path.stat().st_size == 0:
            self._write([list(CSV_COLUMNS)])
            return
        with self.path.open(newline="", encoding="utf-8") as file:
            header = next(csv.reader(file), [])
        if tuple(header) != CSV_COLUMNS:
            raise CsvHeaderError(
                f"{self.path} has columns {header}, expected {list(CSV_COLUMNS)}: move it aside or set "
                "RECORDER_CSV_PATH to a new file"
            )

    def logged_ids(self) -> set[int]:
        with self.path.open(newline="", encoding="utf-8") as file:
            return {int(row["attendance_id"]) for row in csv.DictReader(file) if row.get("attendance_id")}

    def append(self, marks: Iterable[AttendanceMark]) -> int:
        rows = [mark.csv_row(self.tz) for mark in marks]
        if rows:
            self._write(rows)
        return len(rows)

    def reconcile(self, marks: list[AttendanceMark]) -> int:
        """Append every mark missing from the file; returns how many were missing."""
        logged = self.logged_ids()
        missing = [mark for mark in marks if mark.attendance_id not in logged]
        if missing:
            logger.warning("CSV was %d row(s) behind MySQL; appending them now", len(missing))
            self.append(missing)
        extra = logged - {mark.attendance_id for mark in marks}
        if extra:
            logger.warning("CSV has %d row(s) that MySQL does not (ids %s...)", len(extra), sorted(extra)[:5])
        return len(missing)

    def _write(self, rows: list[list[str]]) -> None:
        # One write of whole lines, then fsync: after a crash a row is complete or absent
        # (a torn last line is cut by the next open()).
        with self.path.open("a", newline="", encoding="utf-8") as file:
            csv.writer(file, lineterminator="\n").writerows(rows)
            file.flush()
            os.fsync(file.fileno())

    def _cut_torn_line(self) -> None:
        with self.path.open("rb+") as file:
            file.seek(0, os.SEEK_END)
            size = file.tell()
            file.seek(max(0, size - 1))
            if size == 0 or file.read(1) == b"\n":
                return
            data = self._tail(file, size)
            keep = size - len(data) + data.rfind(b"\n") + 1 if b"\n" in data else 0
            logger.warning("cutting a torn last line from %s (%d bytes)", self.path, size - keep)
            file.truncate(keep)

    @staticmethod
    def _tail(file: BinaryIO, size: int) -> bytes:
        chunk = min(size, 1 << 16)
        file.seek(size - chunk)
        return file.read(chunk)
