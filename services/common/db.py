"""MySQL access shared by the services: engine, waiting for the database, creating it.

SQLAlchemy Core with plain SQL: the schema lives in `db/migrations/`, queries stay readable
SQL, and the pool reconnects by itself after a database restart (pool_pre_ping).
"""

import logging
import threading

import pymysql
import sqlalchemy as sa
from sqlalchemy.engine import Engine, make_url

from services.common.migrations import migrate
from services.common.settings import DatabaseSettings, redact
from services.common.transport import Backoff

logger = logging.getLogger(__name__)


# Errors that mean "the database is unreachable or restarting", worth a retry.
TRANSIENT_DB_ERRORS: tuple[type[BaseException], ...] = (sa.exc.OperationalError, sa.exc.InterfaceError)


def create_engine(settings: DatabaseSettings, pool_size: int = 5) -> Engine:
    return sa.create_engine(
        settings.database_url,
        pool_pre_ping=True,
        pool_recycle=3600,
        pool_size=pool_size,
        # Every timestamp in the database is UTC, whatever the server's zone.
        connect_args={"init_command": "SET time_zone = '+00:00'", "connect_timeout": 5},
    )


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
