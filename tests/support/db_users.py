"""MySQL users with exactly a service's privileges (db_grants.PRIVILEGES, what compose and
`make run` grant), on a test's own database, dropped afterwards."""

import uuid
from collections.abc import Iterator
from contextlib import contextmanager

from sqlalchemy.engine import make_url

from services.common import db_grants


@contextmanager
def service_db_user(database_url: str, service: str) -> Iterator[str]:
    """A DATABASE_URL for a new user with `service`'s privileges on `database_url`'s database."""
    user, password = f"t_{service[:5]}_{uuid.uuid4().hex[:10]}", uuid.uuid4().hex
    connection, database = db_grants.admin_connection(database_url)
    try:
        db_grants.provision(connection, service, user, password, database)
        url = make_url(database_url).set(username=user, password=password)
        yield url.render_as_string(hide_password=False)
    finally:
        with connection.cursor() as cursor:
            cursor.execute(f"DROP USER IF EXISTS '{user}'@'%'")
        connection.close()
