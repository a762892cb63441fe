"""The MySQL privileges: db/grants.sql is generated from them, and every table of the schema
is given to the services that use it, or on purpose to none."""

import re

from harness.paths import ROOT
from services.common import db_grants

# Tables no service reads or writes: the migrator's own ledger.
NOBODYS = {"schema_migrations"}


def schema_tables() -> set[str]:
    text = "\n".join(p.read_text() for p in sorted((ROOT / "db" / "migrations").glob("*.sql")))
    return set(re.findall(r"CREATE TABLE IF NOT EXISTS (\w+)", text))


def test_db_grants_sql_is_generated_from_the_privileges() -> None:
    assert (ROOT / "db" / "grants.sql").read_text() == db_grants.sql(), (
        "run `python -m services.common.db_grants sql > db/grants.sql`"
    )


def test_every_table_is_someones_on_purpose_and_every_granted_table_exists() -> None:
    tables = schema_tables()
    granted = {table for privileges in db_grants.PRIVILEGES.values() for table in privileges}
    assert granted <= tables, granted - tables
    assert tables - granted - NOBODYS == set(), (
        f"a new table needs a decision in db_grants.PRIVILEGES: {sorted(tables - granted - NOBODYS)}"
    )


def test_the_recognizers_only_read_and_the_audit_log_is_append_only() -> None:
    assert set(db_grants.PRIVILEGES["recognizer"].values()) == {db_grants.READ}
    assert db_grants.PRIVILEGES["api"]["audit_log"] == db_grants.APPEND
    assert "audit_log" not in db_grants.PRIVILEGES["recorder"]


def test_account_names_that_could_inject_sql_are_refused() -> None:
    for user, host in (("api'; DROP", "%"), ("api", "x' OR '1")):
        try:
            db_grants.grant_statements("api", user, "attendance", host)
        except ValueError:
            continue
        raise AssertionError(f"{user!r}@{host!r} accepted")
