"""MySQL access shared by the services: engine, waiting for the database, creating it.

SQLAlchemy Core with plain SQL: the schema lives in `db/migrations/`, queries stay readable
SQL, and the pool reconnects by itself after a database restart (pool_pre_ping).
"""

import logging
import threading
from collections.abc import Callable
from typing import Any

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from services.common.migrations import migrate, tls_args
from services.common.settings import DatabaseSettings, redact
from services.common.transport import Backoff

logger = logging.getLogger(__name__)


# Errors that mean "the database is unreachable or restarting", worth a retry.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)


# Limits on every database call, so that a stuck one fails (a TransientError upstream: logged
# and retried) instead of hanging the service silently (issue 9, finding 11).
LOCK_WAIT_S = 10  # a row lock (innodb_lock_wait_timeout) or a table lock (lock_wait_timeout)
STATEMENT_TIMEOUT_S = 60.0  # any statement, where the server can enforce it (see _session_limits)
# The client's own limit on waiting for the server; beyond the statement timeout, so that the
# server's clearer error comes first. It also covers a server that stopped answering at all.
READ_TIMEOUT_MARGIN_S = 15.0


def create_engine(
    settings: DatabaseSettings,
    pool_size: int = 5,
    *,
    lock_wait_s: int = LOCK_WAIT_S,
    statement_timeout_s: float = STATEMENT_TIMEOUT_S,
) -> Engine:
    """The engine of a service; every connection has the limits above (a long job such as a
    bulk purge can ask for a longer `statement_timeout_s`)."""
    io_timeout = int(statement_timeout_s + READ_TIMEOUT_MARGIN_S)
    engine = sa.create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_recycle=3600,
        pool_size=pool_size,
        connect_args={
            # Every timestamp in the database is UTC, whatever the server's zone.
            "init_command": "SET time_zone = '+00:00'",
            "connect_timeout": 5,
            "read_timeout": io_timeout,
            "write_timeout": io_timeout,
            **tls_connect_args(settings),
        },
    )
    sa.event.listen(engine, "connect", _session_limits(lock_wait_s, statement_timeout_s))
    return engine


def tls_connect_args(settings: DatabaseSettings) -> dict[str, Any]:
    """PyMySQL's TLS arguments for DATABASE_CA_FILE (services.common.migrations.tls_args)."""
    return tls_args(settings.database_ca_file)


def _session_limits(lock_wait_s: int, statement_timeout_s: float) -> Callable[[Any, Any], None]:
    """Set the session's lock-wait and statement timeouts on each new connection.

    Lock waits: the same variables on MySQL and MariaDB. A statement timeout has two dialects:
    MariaDB's `max_statement_time` (seconds, every statement) and MySQL's `max_execution_time`
    (milliseconds, SELECT only; the lock waits and the read timeout cover the rest). Only the
    variable the server has is set, so the SQL is valid on both."""
    lock_wait = max(1, int(lock_wait_s))

    def on_connect(dbapi_connection: Any, _record: Any) -> None:
        with dbapi_connection.cursor() as cursor:
            cursor.execute(
                "SHOW VARIABLES WHERE Variable_name IN ('max_statement_time', 'max_execution_time')"
            )
            present = {row[0] for row in cursor.fetchall()}
            limits = [f"innodb_lock_wait_timeout = {lock_wait}", f"lock_wait_timeout = {lock_wait}"]
            if "max_statement_time" in present:
                limits.append(f"max_statement_time = {float(statement_timeout_s):.3f}")
            elif "max_execution_time" in present:
                limits.append(f"max_execution_time = {int(statement_timeout_s * 1000)}")
            cursor.execute("SET SESSION " + ", ".join(limits))

    return on_connect


def wait_for_database(engine: Engine, stop: threading.Event | None = None) -> None:
    """Block until a query succeeds, logging each failed attempt (with backoff)."""
    stop = stop or threading.Event()
    for attempt, delay in enumerate(Backoff().delays(), start=1):
        try:
            with engine.connect() as connection:
                connection.execute(sa.text("SELECT 1"))
        except TRANSIENT_DB_ERRORS as error:
            logger.warning(
                "MySQL at %s not ready (attempt %d: %s); retrying in %.1fs",
                redact(str(engine.url.render_as_string(hide_password=False))),
                attempt,
                getattr(error, "orig", error),
                delay,
            )
            if stop.wait(delay):
                raise
            continue
        if attempt > 1:
            logger.info("connected to MySQL after %d attempts", attempt)
        return


def create_database(database_url: str) -> None:
    """Create the URL's database if it is missing and bring its schema up to date (idempotent)."""
    migrate(database_url)


def drop_database(database_url: str) -> None:
    url = make_url(database_url)
    server = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
    )
    try:
        with server.cursor() as cursor:
            cursor.execute(f"DROP DATABASE IF EXISTS `{url.database}`")
    finally:
        server.close()
