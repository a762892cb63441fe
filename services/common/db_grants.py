"""One MySQL user per service, with privileges on exactly the tables it uses (issue 9, least
privilege): the one home of who may read or write what, as topology.PERMISSIONS is for the broker.

- The **recognizers** read the gallery (students, face_encodings) and nothing else: a stolen
  recognizer password reads no account, writes no attendance.
- The **recorder** writes sightings, marks, changes, sessions and the review queue, and reads
  the rosters and the timetable; it never sees accounts, tokens, the audit log or encodings.
- The **API** manages accounts, students, enrollment, courses, the timetable, corrections and
  the review queue; the audit log is append-only to it (SELECT, INSERT); it never reads sightings.
- Nobody but the migrator (an admin account: root in compose) changes the schema.

`SELECT ... FOR UPDATE` needs UPDATE (or DELETE) beside SELECT on MySQL 8.0.22+, so a table a
service locks rows of has UPDATE even where it only appends.

    python -m services.common.db_grants setup   # as an admin: the migrations, then `apply` (compose)
    python -m services.common.db_grants apply   # as an admin: create/refresh the users
    python -m services.common.db_grants sql     # the statements, passwords left out (db/grants.sql)

`apply` reads the admin connection from DATABASE_URL and each service's password from
MYSQL_<SERVICE>_PASSWORD (e.g. MYSQL_API_PASSWORD); a user that exists gets its password
reset and its privileges replaced, so running it again rotates passwords and applies a newer
version's grants to an upgraded database. Valid on MySQL 8 and MariaDB 10.11.
"""

import argparse
import logging
import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

import pymysql
from sqlalchemy.engine import make_url

from services.common.logs import setup_logging
from services.common.migrations import migrate, tls_args

logger = logging.getLogger(__name__)

READ = ("SELECT",)
APPEND = ("SELECT", "INSERT")
WRITE = ("SELECT", "INSERT", "UPDATE")
ALL = ("SELECT", "INSERT", "UPDATE", "DELETE")

PRIVILEGES: dict[str, dict[str, tuple[str, ...]]] = {
    "recognizer": {"students": READ, "face_encodings": READ},
    "recorder": {
        "identity_events": ("SELECT", "INSERT", "DELETE"),  # DELETE: the retention purge
        "attendance": WRITE,
        "attendance_changes": WRITE,  # UPDATE only for FOR UPDATE: rows are never changed
        "cameras": WRITE,
        "class_sessions": WRITE,
        "review_items": ALL,
        "review_crops": ALL,
        "students": READ,
        "courses": READ,
        "course_students": READ,
        "terms": READ,
        "holidays": READ,
        "timetable_slots": READ,
    },
    "api": {
        "users": ALL,
        "auth_tokens": ALL,
        "audit_log": APPEND,
        "students": ALL,
        "face_encodings": ALL,
        "courses": ALL,
        "course_students": ALL,
        "course_teachers": ALL,
        "cameras": WRITE,
        "class_sessions": ALL,
        "attendance": WRITE,
        "attendance_changes": WRITE,
        "terms": ALL,
        "holidays": ALL,
        "timetable_slots": ALL,
        "review_items": ALL,
        "review_crops": ALL,
        "roster_imports": ALL,
        "roster_import_rows": ALL,
    },
}
SERVICES = tuple(PRIVILEGES)
# The users compose and `make run` create, one per service.
USERNAMES = {service: f"attendance_{service}" for service in SERVICES}

_NAME = re.compile(r"^[A-Za-z0-9_]{1,32}$")
_HOST = re.compile(r"^[A-Za-z0-9_.%:-]{1,255}$")


def _account(user: str, host: str) -> str:
    if not _NAME.match(user) or not _HOST.match(host):
        raise ValueError(f"refusing the account name {user!r}@{host!r}")
    return f"'{user}'@'{host}'"


def grant_statements(service: str, user: str, database: str, host: str = "%") -> list[str]:
    """The GRANTs giving `user` exactly `service`'s privileges on `database`."""
    if not _NAME.match(database.replace("-", "_")):
        raise ValueError(f"refusing the database name {database!r}")
    account = _account(user, host)
    return [
        f"GRANT {', '.join(privileges)} ON `{database}`.`{table}` TO {account}"
        for table, privileges in sorted(PRIVILEGES[service].items())
    ]


def provision(
    connection: pymysql.connections.Connection,
    service: str,
    user: str,
    password: str,
    database: str,
    *,
    host: str = "%",
) -> None:
    """Create (or reset) `user` with `password` and exactly `service`'s privileges."""
    account = _account(user, host)
    secret = connection.escape(password)  # quoted; no parameters, since the host may be '%'
    with connection.cursor() as cursor:
        cursor.execute(f"CREATE USER IF NOT EXISTS {account} IDENTIFIED BY {secret}")
        cursor.execute(f"ALTER USER {account} IDENTIFIED BY {secret}")
        # Exactly these privileges: whatever an older version (or a person) granted goes.
        cursor.execute(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM {account}")
        for statement in grant_statements(service, user, database, host):
            cursor.execute(statement)


def admin_connection(
    database_url: str, ca_file: Path | None = None
) -> tuple[pymysql.connections.Connection, str]:
    url = make_url(database_url)
    connection = pymysql.connect(
        host=url.host or "127.0.0.1",
        port=url.port or 3306,
        user=url.username or "root",
        password=url.password or "",
        autocommit=True,
        **tls_args(ca_file),
    )
    return connection, str(url.database)


def apply(
    database_url: str, passwords: Mapping[str, str], host: str = "%", ca_file: Path | None = None
) -> None:
    """Every service's user, as an admin (DATABASE_URL's account must be allowed to grant), over
    verified TLS with `ca_file` (DATABASE_CA_FILE)."""
    connection, database = admin_connection(database_url, ca_file)
    try:
        for service in SERVICES:
            provision(connection, service, USERNAMES[service], passwords[service], database, host=host)
            logger.info("MySQL user %s: %s's privileges on %s", USERNAMES[service], service, database)
    finally:
        connection.close()


def sql(database: str = "attendance") -> str:
    lines = [
        "-- Generated by `python -m services.common.db_grants sql`; a test keeps it true.",
        "-- `python -m services.common.db_grants apply` runs these (with passwords) as an admin.",
    ]
    for service in SERVICES:
        lines.append(f"\n-- {service}")
        password = f"<MYSQL_{service.upper()}_PASSWORD>"
        lines.append(f"CREATE USER IF NOT EXISTS '{USERNAMES[service]}'@'%' IDENTIFIED BY '{password}';")
        lines.append(f"REVOKE ALL PRIVILEGES, GRANT OPTION FROM '{USERNAMES[service]}'@'%';")
        lines += [f"{s};" for s in grant_statements(service, USERNAMES[service], database)]
    return "\n".join(lines) + "\n"


def main(argv: list[str] | None = None) -> None:
    parser = argparse.ArgumentParser(
        prog="python -m services.common.db_grants", description=__doc__.split("\n")[0]
    )
    parser.add_argument("command", choices=["setup", "apply", "sql"])
    args = parser.parse_args(argv)
    if args.command == "sql":
        sys.stdout.write(sql())
        return
    setup_logging("db_grants", os.environ.get("LOG_LEVEL", "INFO"))
    variables = {service: f"MYSQL_{service.upper()}_PASSWORD" for service in SERVICES}
    missing = [name for name in variables.values() if not os.environ.get(name)]
    if missing:
        sys.exit(f"db_grants: set {', '.join(missing)} (each service's MySQL password; no default exists)")
    from services.common.settings import DatabaseSettings  # noqa: PLC0415 - only the CLI needs settings

    settings = DatabaseSettings()
    if args.command == "setup":
        migrate(settings.database_url, ca_file=settings.database_ca_file)
    apply(
        settings.database_url,
        {s: os.environ[v] for s, v in variables.items()},
        ca_file=settings.database_ca_file,
    )


if __name__ == "__main__":
    main()
