"""One recorder per database and per CSV file: a second one refuses to start, with a clear message.

Why refuse rather than make two cooperate: two recorders sharing the work broke both things the
recorder promises (issue 9, finding 9). The vote that marks a student (two sightings within
the window) reads the sightings already committed, so when the two sightings of a student
reach two recorders at once, each transaction sees only its own and neither marks: 12
sightings of 6 students gave 0 marks. And each CSV catch-up appended the marks the other had
committed too, so rows were written twice. Making them cooperate would take a lock per
(session, student) around every vote and a shared writer for the file, for no gain: one
recorder commits thousands of events per second in batches (README, "Speed and accuracy"),
far beyond what the cameras of a school produce. So the recorder is a single writer, and that
is enforced, not just documented:

- a MySQL named lock (`GET_LOCK`), held on a dedicated connection for the recorder's lifetime,
  one per database (named after it: locks are server-wide), so a second recorder on the same
  database, whatever its CSV path or host, cannot start. The connection is checked before each
  batch; if it was lost (a database restart frees the lock) the lock is taken again, and if
  another recorder took it meanwhile, this one stops;
- an exclusive `flock` on `<csv>.lock` beside the file, so two recorders on one file (even on
  two databases) cannot both append to it.

A restarted recorder waits a few seconds for the lock, long enough for the server to notice
that a killed predecessor's connection is gone.
"""

import contextlib
import fcntl
import hashlib
import logging
import os
from pathlib import Path
from typing import Any

import pymysql
from sqlalchemy.engine import Engine

from services.common.db import TRANSIENT_DB_ERRORS
from services.common.transport import TransientError

logger = logging.getLogger(__name__)

EXIT_ANOTHER_RECORDER = 4
# A year: the lock's session must outlive nights and holidays without a batch.
_IDLE_SESSION_S = 31536000
_PYMYSQL_UNREACHABLE: tuple[type[Exception], ...] = (pymysql.err.OperationalError, pymysql.err.InterfaceError)


class AnotherRecorderError(Exception):
    """Another recorder holds the database or the CSV file: this one must not run."""


class DatabaseLock:
    """The database's recorder lock, held on a connection of its own."""

    def __init__(self, engine: Engine, wait_s: int = 5) -> None:
        self.engine = engine
        self.wait_s = wait_s
        database = engine.url.database or ""
        # A lock name is at most 64 characters; a database name can be 64 alone.
        digest = hashlib.sha256(database.encode()).hexdigest()[:40]
        name = f"attendance-recorder:{database}"
        self.name = name if len(name) <= 64 else f"attendance-recorder:{digest}"
        self._connection: Any = None  # the DBAPI (pymysql) connection holding the lock

    def acquire(self) -> None:
        """Take the lock (waiting up to `wait_s`); raises AnotherRecorderError if another holds it."""
        self.release()
        connection = self.engine.raw_connection()
        connection.detach()  # ours for the process's lifetime, never back to the pool
        dbapi: Any = connection.dbapi_connection  # a pymysql connection
        try:
            with dbapi.cursor() as cursor:
                cursor.execute(f"SET SESSION wait_timeout = {_IDLE_SESSION_S}")
                cursor.execute("SELECT GET_LOCK(%s, %s)", (self.name, self.wait_s))
                (got,) = cursor.fetchone()
                if got != 1:
                    cursor.execute("SELECT IS_USED_LOCK(%s)", (self.name,))
                    (holder,) = cursor.fetchone()
                    raise AnotherRecorderError(
                        f"another recorder is already running on database {self.engine.url.database!r}: "
                        f"MySQL connection {holder} holds the lock {self.name!r}. Only one recorder may "
                        "run per database: stop the other one (or, if none is running, end that "
                        f"connection with KILL {holder})"
                    )
        except BaseException:
            dbapi.close()
            raise
        self._connection = dbapi
        logger.info("holding MySQL lock %r: this is the only recorder on this database", self.name)

    def check(self) -> None:
        """Before a batch: is the lock still ours? Taken again after a lost connection.

        Raises AnotherRecorderError if another recorder took it meanwhile, TransientError if MySQL
        cannot be reached (the batch would fail anyway)."""
        try:
            if self._connection is not None:
                self._connection.ping(reconnect=False)
                return
        except pymysql.err.Error:
            logger.warning("lost the connection holding the recorder lock; taking the lock again")
            self.release()
        try:
            self.acquire()
        except (*_PYMYSQL_UNREACHABLE, *TRANSIENT_DB_ERRORS) as error:
            raise TransientError(
                f"MySQL unavailable for the recorder lock: {getattr(error, 'orig', error)}"
            ) from error

    def release(self) -> None:
        connection, self._connection = self._connection, None
        if connection is not None:
            with contextlib.suppress(pymysql.err.Error):
                connection.close()


class FileLock:
    """An exclusive flock on `<csv>.lock`, held while the process lives."""

    def __init__(self, csv_path: Path) -> None:
        self.csv_path = csv_path
        self.path = csv_path.with_name(csv_path.name + ".lock")
        self._fd: int | None = None

    def acquire(self) -> None:
        self.path.parent.mkdir(parents=True, exist_ok=True)
        fd = os.open(self.path, os.O_RDWR | os.O_CREAT, 0o644)
        try:
            fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            os.close(fd)
            raise AnotherRecorderError(
                f"another recorder is already writing {self.csv_path} (it holds {self.path}). Only one "
                "recorder may write a CSV file: stop the other one, or set RECORDER_CSV_PATH to another file"
            ) from None
        os.ftruncate(fd, 0)
        os.write(fd, f"{os.getpid()}\n".encode())
        self._fd = fd

    def release(self) -> None:
        fd, self._fd = self._fd, None
        if fd is not None:
            os.close(fd)
